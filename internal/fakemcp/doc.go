// Package fakemcp is an in-tree MCP server for tests and dev mode, built
// with the official MCP Go SDK (github.com/modelcontextprotocol/go-sdk) and
// served over Streamable HTTP, so that the gateway's MCP endpoint is tested
// against a real server, not a mock.
//
// It offers three tools:
//
//	get_weather     {location, unit}  the (fixed) weather of a place; the
//	                                  location "nowhere" is a tool error
//	search_docs     {query, limit}    titles of matching documentation pages
//	delete_records  {table, filter}   pretends to delete rows: the sensitive
//	                                  tool that policy gates behind an approval
//
// Start one on loopback and point the gateway at its URL:
//
//	srv, err := fakemcp.Listen("127.0.0.1:0", fakemcp.Options{Token: "mcp-secret"})
//	...
//	defer srv.Close()
//	srv.URL()   // http://127.0.0.1:PORT/mcp
//	srv.Calls() // the tool calls it executed, in order
//	srv.Ended() // sessions its clients ended (HTTP DELETE)
//
// It is stateless unless Options.Stateful gives each client a session (an
// Mcp-Session-Id), as most real servers do; a stateful server speaks the
// protocol versions before 2026-07-28 only.
//
// With Options.Token set, every HTTP request must carry
// "Authorization: Bearer <token>", which the gateway injects from its
// configuration: clients of the gateway never hold it. Handler returns the
// same server as an http.Handler, for in-process use.
package fakemcp
