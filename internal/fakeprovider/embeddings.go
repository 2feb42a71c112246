package fakeprovider

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
)

// maxEmbeddingInputs is the API's limit on inputs per request.
const maxEmbeddingInputs = 2048

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
}

// embeddingCall is a parsed embeddings request.
type embeddingCall struct {
	model  string
	inputs []string // each input; token arrays are rendered as their JSON
	base64 bool
	dims   int
	sc     scenario
}

// defaultDims is each model's native vector size.
func defaultDims(model string) int {
	if strings.Contains(model, "large") {
		return 3072
	}
	return 1536
}

// parseEmbeddings decodes and validates an embeddings request body.
func parseEmbeddings(body []byte) (embeddingCall, *apiError) {
	var req embeddingRequest
	var c embeddingCall
	if err := decodeJSON(body, &req); err != nil {
		return c, errInvalid("", "We could not parse the JSON body of your request.")
	}
	if req.Model == "" {
		return c, errInvalid("model", "you must provide a model parameter")
	}
	c.model = req.Model
	inputs, err := embeddingInputs(req.Input)
	if err != nil {
		return c, errInvalid("input", err.Error())
	}
	c.inputs = inputs
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		c.base64 = true
	default:
		return c, errInvalid("encoding_format", fmt.Sprintf("Invalid value: '%s'. Supported values are: 'float' and 'base64'.", req.EncodingFormat))
	}
	c.dims = defaultDims(req.Model)
	if d := req.Dimensions; d != nil {
		if *d < 1 || *d > c.dims {
			return c, errInvalid("dimensions", fmt.Sprintf("Invalid value for 'dimensions' = %d. Must be between 1 and %d.", *d, c.dims))
		}
		c.dims = *d
	}
	sc, perr := parseScenario(strings.Join(inputs, "\n"))
	if perr != nil {
		return c, scenarioError(perr)
	}
	c.sc = sc
	return c, nil
}

// embeddingInputs reads "input": a string, an array of strings, an array of
// token ids, or an array of token-id arrays. None may be empty.
func embeddingInputs(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badInput("Missing required parameter: 'input'.")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, badInput("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.")
		}
		return []string{one}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badInput("'input' must be a string, an array of strings or an array of token arrays.")
	}
	if len(items) == 0 || len(items) > maxEmbeddingInputs {
		return nil, badInput("'input' must have between 1 and %d items.", maxEmbeddingInputs)
	}
	var tokens []int
	if json.Unmarshal(raw, &tokens) == nil {
		return []string{string(raw)}, nil
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		var s string
		var toks []int
		switch {
		case json.Unmarshal(it, &s) == nil && s != "":
			out = append(out, s)
		case json.Unmarshal(it, &toks) == nil && len(toks) > 0:
			out = append(out, string(bytes.TrimSpace(it)))
		default:
			return nil, badInput("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.")
		}
	}
	return out, nil
}

// embed makes a deterministic unit vector of n dimensions from text: the
// SHA-256 of (text, block counter) spread over [-1, 1], then normalised.
func embed(text string, n int) []float32 {
	v := make([]float32, n)
	var block [sha256.Size]byte
	var sum float64
	for i := range v {
		if i%8 == 0 {
			h := sha256.New()
			h.Write([]byte(text))
			var ctr [8]byte
			binary.BigEndian.PutUint64(ctr[:], uint64(i/8))
			h.Write(ctr[:])
			h.Sum(block[:0])
		}
		u := binary.BigEndian.Uint32(block[(i%8)*4:])
		f := float32(float64(u)/math.MaxUint32*2 - 1)
		v[i] = f
		sum += float64(f) * float64(f)
	}
	if norm := math.Sqrt(sum); norm > 0 {
		for i := range v {
			v[i] = float32(float64(v[i]) / norm)
		}
	}
	return v
}

type embeddingOut struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32 or a base64 string
}

// embeddings answers POST /v1/embeddings.
func (x *exchange) embeddings() {
	c, e := parseEmbeddings(x.body)
	if e != nil {
		x.fail(e)
		return
	}
	if e := x.s.checkModel(c.model, "embedding"); e != nil {
		x.fail(e)
		return
	}
	if c.sc.errStatus != 0 {
		x.fail(errScenario(c.sc.errStatus))
		return
	}
	if !x.sleep(c.sc.slow) {
		x.cancelled()
		return
	}
	data := make([]embeddingOut, len(c.inputs))
	prompt := 0
	for i, in := range c.inputs {
		vec := embed(in, c.dims)
		data[i] = embeddingOut{Object: "embedding", Index: i, Embedding: vec}
		if c.base64 {
			b := make([]byte, 4*len(vec))
			for k, f := range vec {
				binary.LittleEndian.PutUint32(b[4*k:], math.Float32bits(f))
			}
			data[i].Embedding = base64.StdEncoding.EncodeToString(b)
		}
		prompt += tokens(len(in))
	}
	x.writeJSON(http.StatusOK, struct {
		Object string         `json:"object"`
		Data   []embeddingOut `json:"data"`
		Model  string         `json:"model"`
		Usage  struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}{Object: "list", Data: data, Model: c.model, Usage: struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	}{prompt, prompt}})
}
