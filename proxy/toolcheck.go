package proxy

import "context"

// toolCallCheck returns the check run on each tool call the model emits,
// before the client receives it.
func (g *Gateway) toolCallCheck(ctx context.Context, x *exchange) func(name string) error {
	return func(string) error { return nil }
}
