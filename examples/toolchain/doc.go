// Command toolchain runs a two-step tool chain through a Portcullis gateway
// started with `portcullis serve --dev`, as the demo app, with the official
// OpenAI and MCP Go SDKs:
//
//  1. it lists the tools of the gateway's MCP endpoint /mcp/tools (only
//     those policy allows the app), and offers them to the model;
//  2. the model (the fake provider) answers with a get_weather tool call,
//     which the gateway re-authorizes (tool.call) before the app sees it;
//  3. the app calls that tool through the MCP endpoint: another tool.call
//     decision, recorded before the upstream MCP server runs it, and a
//     result record after;
//  4. the app sends the tool result back to the model (the gateway checks
//     the tool result too) and prints the final answer.
//
// It prints the audit seq of every step; `portcullis audit verify` then
// checks the whole log. See README.md.
package main
