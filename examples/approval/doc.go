// Command approval shows an agent parked on a sensitive tool and a human
// approving it, through a Portcullis gateway started with
// `portcullis serve --dev`:
//
//  1. the app mints a task grant for a refund and delegates it to the agent;
//  2. the agent asks a model, with the official OpenAI SDK, to use the
//     issue_refund tool: policy requires a human approval, so the gateway
//     parks the call and answers 403 approval_required with an approval id;
//  3. a human (alice, with her own SVID) approves it with
//     `portcullis approvals approve ID --reason …` while the agent polls;
//  4. the agent retries the identical call with the Portcullis-Approval
//     header, and it runs — once: the same retry again is refused.
//
// See README.md for the commands.
package main
