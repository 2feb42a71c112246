package proxy

// apiParsers are the model APIs the gateway serves, by path. Each parser
// reduces its API's body to the same LLMRequest, so that policy and audit
// see one shape whatever the client speaks.
var apiParsers = map[string]func(body, digestKey []byte) (*LLMRequest, error){
	"/v1/chat/completions": ParseChatRequest,
	"/v1/responses":        ParseResponsesRequest,
	"/v1/embeddings":       ParseEmbeddingsRequest,
	"/v1/messages":         ParseMessagesRequest,
	countTokensPath:        ParseCountTokensRequest,
}
