package serversdk

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// Process is one connected server process: the SDK of one game server process.
type Process struct {
	Identity
	// ID is the process id the SDK sent (pID).
	ID                      string
	SDKVersion, SDKLanguage string

	ws      *websocket.Conn
	out     chan []byte
	done    chan struct{}
	stop    sync.Once
	answers *answerCache
	limit   *rate.Limiter
}

// Error is an error answer: the status code the SDK maps to its error type (400 BadRequest, 401
// Unauthorized, 403 Forbidden, 404 NotFound, 409 Conflict, 429 TooManyRequests, 5xx InternalService) and a
// message naming the problem.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// Errorf is an Error with a formatted message.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// ErrClosed is what Push answers for a connection that is gone, or whose queue is full (a process that
// does not read is cut off, never waited for).
var ErrClosed = fmt.Errorf("the server process's connection is closed")

// Push sends a message the service starts (CreateGameSession, UpdateGameSession, TerminateProcess,
// RefreshConnection): Action and fields, without a RequestId. It never blocks: a process whose queue of
// messages is full is disconnected (its SDK reconnects) and ErrClosed returned.
func (p *Process) Push(action string, fields any) error {
	payload, err := message(response{Action: action, push: true}, fields)
	if err != nil {
		return err
	}
	if !p.send(payload) {
		return ErrClosed
	}
	return nil
}

// Done is closed when the connection ends.
func (p *Process) Done() <-chan struct{} { return p.done }

// Close ends the connection (the SDK reconnects, unless it is ending).
func (p *Process) Close() { p.close() }

// response is the envelope of an answer (or a push: no RequestId, no StatusCode).
type response struct {
	Action       string
	RequestID    string
	StatusCode   int
	ErrorMessage string
	push         bool
}

// message is the JSON of r with fields (a struct or a map) at the top level.
func message(r response, fields any) ([]byte, error) {
	m := map[string]any{}
	if fields != nil {
		b, err := json.Marshal(fields)
		if err != nil {
			return nil, err
		}
		if string(b) != "null" {
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("the fields of %s are not an object: %w", r.Action, err)
			}
		}
	}
	env := map[string]any{"Action": r.Action}
	if !r.push {
		env["RequestId"], env["StatusCode"] = r.RequestID, r.StatusCode
		if r.ErrorMessage != "" {
			env["ErrorMessage"] = r.ErrorMessage
		}
	}
	maps.Copy(m, env)
	return json.Marshal(m)
}

// answer sends r with result and returns what it sent.
func (p *Process) answer(r response, result any) []byte {
	payload, err := message(r, result)
	if err != nil {
		payload, _ = message(response{Action: r.Action, RequestID: r.RequestID, StatusCode: 500, ErrorMessage: err.Error()}, nil)
	}
	p.send(payload)
	return payload
}

// send queues payload for the writer; false when the connection is gone or its queue full (then closed).
func (p *Process) send(payload []byte) bool {
	select {
	case <-p.done:
		return false
	default:
	}
	select {
	case p.out <- payload:
		return true
	default:
		p.close()
		return false
	}
}

func (p *Process) writeLoop() {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		select {
		case payload := <-p.out:
			_ = p.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := p.ws.WriteMessage(websocket.TextMessage, payload); err != nil {
				p.close()
				return
			}
		case <-ping.C:
			if err := p.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				p.close()
				return
			}
		case <-p.done:
			return
		}
	}
}

func (p *Process) close() {
	p.stop.Do(func() {
		close(p.done)
		_ = p.ws.Close()
	})
}

// answerCache remembers the answers of a process's recent requests by request id (answersKept of them).
type answerCache struct {
	mu      sync.Mutex
	entries map[string]*answer
	order   []string
}

type answer struct {
	done    chan struct{}
	payload []byte
}

// claim returns the entry of requestID and whether this is its first sight (then the caller serves it).
func (c *answerCache) claim(requestID string) (*answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.entries[requestID]; ok {
		return a, false
	}
	a := &answer{done: make(chan struct{})}
	c.entries[requestID] = a
	c.order = append(c.order, requestID)
	if len(c.order) > answersKept {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
	return a, true
}
