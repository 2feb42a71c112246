// Command delegation runs a human → app → agent chain through a Portcullis
// gateway started with `portcullis serve --dev`:
//
//  1. the app, acting for alice (her user token), mints a task grant;
//  2. it delegates a narrower grant to the agent;
//  3. the agent calls a model with the official OpenAI SDK, the grant as its
//     API key and its own SVID as client certificate;
//  4. the gateway refuses what the grant does not allow: another model, the
//     app's grant replayed from the agent's SVID;
//  5. the app completes the task, and the agent's grant stops working.
//
// See README.md for the commands.
package main
