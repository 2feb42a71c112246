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
	stream := flag.Bool("stream", false, "stream the answer")
	flag.Parse()
	os.Exit(run(f, *model, *stream, strings.Join(flag.Args(), " ")))
}

func run(f workload.Flags, model string, stream bool, prompt string) int {
	if prompt == "" {
		prompt = "Hello from the example app"
	}
	ctx := context.Background()
	w, err := workload.FromFlags(ctx, f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "example-app:", err)
		return 1
	}
	defer w.Close()
	client := w.OpenAI(f.Gateway, "")
	params := openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}
	fmt.Printf("example-app (%s) -> %s\n", w.ID(), model)
	if stream {
		s := client.Chat.Completions.NewStreaming(ctx, params)
		fmt.Print("  ")
		for s.Next() {
			if c := s.Current(); len(c.Choices) > 0 {
				fmt.Print(c.Choices[0].Delta.Content)
			}
		}
		fmt.Println()
		if err := s.Err(); err != nil {
			fmt.Println("  " + workload.Explain(err))
			return 3
		}
		return 0
	}
	resp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		fmt.Println("  " + workload.Explain(err))
		return 3
	}
	fmt.Printf("  %s\n  (%d tokens)\n", resp.Choices[0].Message.Content, resp.Usage.TotalTokens)
	return 0
}
