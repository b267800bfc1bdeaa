// Command goovh-check sends requests to an OVH API with OVH's own Go client (github.com/ovh/go-ovh), so that the
// emulator is checked by a signer and an error parser nobody in this project wrote.
//
// It reads one request a line on stdin, as JSON: {"method": "GET", "path": "/dedicated/server/x/task?function=
// reinstallServer", "body": {...}, "auth": true}, and prints one answer a line on stdout: {"ok": true, "result":
// ...} or {"ok": false, "error": {"code", "class", "message", "queryId", "text"}, "raw": {...}}, where "error" is
// what go-ovh's APIError holds and "raw" the JSON body of the answer (go-ovh keeps no "errorCode": the raw body
// shows it). The credentials and the endpoint URL come from the flags.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ovh/go-ovh/ovh"
)

type request struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
	Auth   *bool           `json:"auth,omitempty"`
}

type apiError struct {
	Code    int    `json:"code"`
	Class   string `json:"class"`
	Message string `json:"message"`
	QueryID string `json:"queryId"`
	Text    string `json:"text"`
}

type answer struct {
	OK     bool      `json:"ok"`
	Result any       `json:"result,omitempty"`
	Error  *apiError `json:"error,omitempty"`
	Raw    any       `json:"raw,omitempty"`
	Failed string    `json:"failed,omitempty"` // not an API error: the request could not be made
}

func call(client *ovh.Client, req request) answer {
	var body any
	if len(req.Body) > 0 {
		body = req.Body
	}
	auth := req.Auth == nil || *req.Auth
	// go-ovh's own request building and signing, then its own answer parsing; the body is read once in between
	// so that the raw answer can be shown beside what go-ovh makes of it.
	httpReq, err := client.NewRequest(req.Method, req.Path, body, auth)
	if err != nil {
		return answer{Failed: err.Error()}
	}
	resp, err := client.Do(httpReq)
	if err != nil {
		return answer{Failed: err.Error()}
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return answer{Failed: err.Error()}
	}
	resp.Body = io.NopCloser(bytes.NewReader(raw))
	var result any
	err = client.UnmarshalResponse(resp, &result)
	if err == nil {
		return answer{OK: true, Result: result}
	}
	var ae *ovh.APIError
	if !errors.As(err, &ae) {
		return answer{Failed: err.Error()}
	}
	var rawBody any
	if json.Unmarshal(raw, &rawBody) != nil {
		rawBody = string(raw)
	}
	return answer{
		Error: &apiError{Code: ae.Code, Class: ae.Class, Message: ae.Message, QueryID: ae.QueryID, Text: ae.Error()},
		Raw:   rawBody,
	}
}

func main() {
	endpoint := flag.String("endpoint", "", "API URL, e.g. http://127.0.0.1:8790/1.0")
	appKey := flag.String("application-key", "", "application key")
	appSecret := flag.String("application-secret", "", "application secret")
	consumerKey := flag.String("consumer-key", "", "consumer key")
	flag.Parse()
	client, err := ovh.NewClient(*endpoint, *appKey, *appSecret, *consumerKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goovh-check:", err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	lines := bufio.NewScanner(os.Stdin)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	for lines.Scan() {
		if len(bytes.TrimSpace(lines.Bytes())) == 0 {
			continue
		}
		var req request
		if err := json.Unmarshal(lines.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, "goovh-check: bad request line:", err)
			os.Exit(2)
		}
		if err := out.Encode(call(client, req)); err != nil {
			fmt.Fprintln(os.Stderr, "goovh-check:", err)
			os.Exit(2)
		}
	}
	if err := lines.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "goovh-check:", err)
		os.Exit(2)
	}
}
