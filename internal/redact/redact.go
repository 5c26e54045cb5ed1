// Package redact keeps what a client of this operator must not learn out of the errors it is answered
// with (the GameLift endpoint's, the Server SDK's). A server error (InternalServiceException, 5xx) often
// wraps a failed request to kube-apiserver, whose message names the cluster's internal address and
// the object's path ("Patch \"https://10.0.0.1:6443/apis/...\": EOF", "dial tcp 10.0.0.1:6443: connect:
// connection refused"). The client is told what failed and why, without where; the operator's log keeps
// the whole message.
package redact

import "regexp"

// apiRequest matches the request a Go HTTP client error names: its method and quoted URL (url.Error).
var apiRequest = regexp.MustCompile(`\b(GET|HEAD|POST|PUT|PATCH|DELETE|Get|Head|Post|Put|Patch|Delete) "[a-z][a-z0-9+.-]*://[^"]*"`)

// socket matches the local and remote addresses a network error names (net.OpError: "read tcp
// 10.0.0.2:40664->10.96.0.1:443: ", "dial tcp 10.96.0.1:443: ").
var socket = regexp.MustCompile(`\b(read|write|dial) (tcp|tcp4|tcp6|udp|udp4|udp6) \S+?: `)

// Addresses is msg without the addresses its failed requests name: the URL of each (its method kept) and
// the sockets of a network error.
func Addresses(msg string) string {
	return socket.ReplaceAllString(apiRequest.ReplaceAllString(msg, "$1 (cluster API)"), "$1 $2: ")
}
