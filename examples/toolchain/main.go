package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/portcullis-dev/portcullis/examples/internal/workload"
)

func main() {
	addr := flag.String("addr", "localhost:8443", "gateway address")
	devDir := flag.String("dev-dir", ".portcullis/dev", "the dev gateway's SVID directory")
	city := flag.String("city", "Paris", "where to ask about the weather")
	flag.Parse()
	if err := run(context.Background(), *addr, *devDir, *city); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr, devDir, city string) error {
	hc, err := workload.DevHTTPClient(devDir, "app")
	if err != nil {
		return err
	}
	base := "https://" + addr

	fmt.Println("1. list the tools of /mcp/tools (filtered by policy for the app)")
	mc := mcp.NewClient(&mcp.Implementation{Name: "toolchain-example", Version: "1"}, nil)
	tools, err := mc.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "/mcp/tools", HTTPClient: hc, MaxRetries: -1}, nil)
	if err != nil {
		return fmt.Errorf("connect to the MCP endpoint: %w", err)
	}
	defer tools.Close()
	list, err := tools.ListTools(ctx, nil)
	if err != nil {
		return err
	}
	var offered []openai.ChatCompletionToolUnionParam
	for _, t := range list.Tools {
		if t.Meta["portcullis.dev/approval"] == true {
			fmt.Printf("   %-15s (needs a human approval: not offered to the model)\n", t.Name)
			continue
		}
		fmt.Printf("   %-15s %s\n", t.Name, t.Description)
		offered = append(offered, functionTool(t))
	}

	fmt.Println("2. ask the model, offering those tools")
	ai := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithHTTPClient(hc),
		option.WithAPIKey("no-provider-key-here"), option.WithMaxRetries(0))
	msgs := []openai.ChatCompletionMessageParamUnion{
		openai.UserMessage("What is the weather in " + city + "? [fake:tool=get_weather]"),
	}
	var resp *http.Response
	first, err := ai.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: msgs, Tools: offered},
		option.WithResponseInto(&resp))
	if err != nil {
		return err
	}
	calls := first.Choices[0].Message.ToolCalls
	if len(calls) == 0 {
		return errors.New("the model answered without calling a tool")
	}
	call := calls[0]
	fmt.Printf("   the model calls %s(%s)   [audit seq %s]\n", call.Function.Name, call.Function.Arguments, resp.Header.Get("X-Portcullis-Audit-Seq"))

	fmt.Println("3. run the tool through the gateway's MCP endpoint")
	var args map[string]any
	if err := json.Unmarshal([]byte(call.Function.Arguments), &args); err != nil {
		return fmt.Errorf("tool arguments: %w", err)
	}
	args["location"] = city // the fake model fills string arguments with "fake"
	res, err := tools.CallTool(ctx, &mcp.CallToolParams{Name: call.Function.Name, Arguments: args})
	if err != nil {
		return fmt.Errorf("tools/call: %w", err)
	}
	out := res.Content[0].(*mcp.TextContent).Text
	a, _ := json.Marshal(res.Meta["portcullis.dev/audit"])
	fmt.Printf("   %s   [audit %s]\n", out, a)

	fmt.Println("4. send the tool result back to the model")
	msgs = append(msgs, first.Choices[0].Message.ToParam(), openai.ToolMessage(out, call.ID))
	final, err := ai.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: msgs, Tools: offered},
		option.WithResponseInto(&resp))
	if err != nil {
		return err
	}
	fmt.Printf("   %q   [audit seq %s]\n", final.Choices[0].Message.Content, resp.Header.Get("X-Portcullis-Audit-Seq"))
	fmt.Println("\nEvery step is in the audit log; check the chain and the checkpoints with:")
	fmt.Println("   go run ./cmd/portcullis audit verify .portcullis/audit")
	return nil
}

// functionTool offers an MCP tool to the model as a function.
func functionTool(t *mcp.Tool) openai.ChatCompletionToolUnionParam {
	var schema map[string]any
	b, _ := json.Marshal(t.InputSchema)
	_ = json.Unmarshal(b, &schema)
	return openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name: t.Name, Description: openai.String(t.Description), Parameters: shared.FunctionParameters(schema),
	})
}
