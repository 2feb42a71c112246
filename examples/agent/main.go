package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/openai/openai-go/v3"

	"github.com/portcullis-dev/portcullis/examples/internal/workload"
)

func main() {
	var f workload.Flags
	f.Register(flag.CommandLine)
	model := flag.String("model", "gpt-4o-mini", "model to ask")
	grant := flag.String("grant", os.Getenv("PORTCULLIS_GRANT"), "task grant to act under (default $PORTCULLIS_GRANT)")
	flag.Parse()
	prompt := strings.Join(flag.Args(), " ")
	if prompt == "" {
		prompt = "Summarize the open tickets."
	}
	ctx := context.Background()
	w, err := workload.FromFlags(ctx, f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "example-agent:", err)
		os.Exit(1)
	}
	defer w.Close()
	how := "with no task grant"
	if *grant != "" {
		how = "under a task grant"
	}
	fmt.Printf("example-agent (%s) -> %s, %s\n", w.ID(), *model, how)
	client := w.OpenAI(f.Gateway, *grant)
	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    *model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	})
	if err != nil {
		fmt.Println("  " + workload.Explain(err))
		os.Exit(3)
	}
	fmt.Printf("  %s\n  (%d tokens)\n", resp.Choices[0].Message.Content, resp.Usage.TotalTokens)
}
