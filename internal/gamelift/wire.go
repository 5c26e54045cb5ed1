// Package gamelift is the GameLift-compatible endpoint: existing AWS SDK clients (boto3, the aws CLI,
// aws-sdk-go-v2) point their endpoint URL at the cluster and work unchanged. It speaks both wire protocols
// GameLift's model lists, Smithy RPC v2 CBOR and AWS JSON 1.1, and authenticates with SigV4.
package gamelift

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Timestamp is a GameLift timestamp: epoch seconds with fractions, a JSON number in AWS JSON 1.1 and a
// CBOR tag 1 (epoch) float in RPC v2 CBOR.
type Timestamp struct{ time.Time }

func epochSeconds(t time.Time) float64 {
	return math.Round(float64(t.UnixMicro())/1e3) / 1e3 // milliseconds, as GameLift reports them
}

// MarshalJSON writes epoch seconds.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(epochSeconds(t.Time), 'f', -1, 64)), nil
}

// MarshalCBOR writes tag 1 with epoch seconds as a float.
func (t Timestamp) MarshalCBOR() ([]byte, error) {
	return cbor.Marshal(cbor.Tag{Number: 1, Content: epochSeconds(t.Time)})
}

// GameProperty is a key/value pair.
type GameProperty struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// PlayerSession is GameLift's PlayerSession shape.
type PlayerSession struct {
	PlayerSessionId string     `json:"PlayerSessionId,omitempty"`
	PlayerId        string     `json:"PlayerId,omitempty"`
	GameSessionId   string     `json:"GameSessionId,omitempty"`
	FleetId         string     `json:"FleetId,omitempty"`
	FleetArn        string     `json:"FleetArn,omitempty"`
	CreationTime    *Timestamp `json:"CreationTime,omitempty"`
	TerminationTime *Timestamp `json:"TerminationTime,omitempty"`
	Status          string     `json:"Status,omitempty"`
	IpAddress       string     `json:"IpAddress,omitempty"`
	DnsName         string     `json:"DnsName,omitempty"`
	Port            int32      `json:"Port,omitempty"`
	PlayerData      string     `json:"PlayerData,omitempty"`
}

// GameSession is GameLift's GameSession shape.
type GameSession struct {
	GameSessionId               string         `json:"GameSessionId,omitempty"`
	Name                        string         `json:"Name,omitempty"`
	FleetId                     string         `json:"FleetId,omitempty"`
	FleetArn                    string         `json:"FleetArn,omitempty"`
	CreationTime                *Timestamp     `json:"CreationTime,omitempty"`
	TerminationTime             *Timestamp     `json:"TerminationTime,omitempty"`
	CurrentPlayerSessionCount   *int32         `json:"CurrentPlayerSessionCount,omitempty"`
	MaximumPlayerSessionCount   *int32         `json:"MaximumPlayerSessionCount,omitempty"`
	Status                      string         `json:"Status,omitempty"`
	StatusReason                string         `json:"StatusReason,omitempty"`
	GameProperties              []GameProperty `json:"GameProperties,omitempty"`
	IpAddress                   string         `json:"IpAddress,omitempty"`
	DnsName                     string         `json:"DnsName,omitempty"`
	Port                        int32          `json:"Port,omitempty"`
	PlayerSessionCreationPolicy string         `json:"PlayerSessionCreationPolicy,omitempty"`
	GameSessionData             string         `json:"GameSessionData,omitempty"`
}

// Error is a GameLift error: its shape name and message. Every one is a 400 but InternalServiceException.
type Error struct {
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Internal reports whether the error is the server's (InternalServiceException), not the request's.
func (e *Error) Internal() bool { return e.Type == InternalServiceException }

func errorf(typ, msg string) *Error { return &Error{Type: typ, Message: msg} }

// GameLift's error shapes.
const (
	InvalidRequestException           = "InvalidRequestException"
	NotFoundException                 = "NotFoundException"
	GameSessionFullException          = "GameSessionFullException"
	InvalidGameSessionStatusException = "InvalidGameSessionStatusException"
	UnauthorizedException             = "UnauthorizedException"
	InternalServiceException          = "InternalServiceException"
	UnknownOperationException         = "UnknownOperationException"
	SerializationException            = "SerializationException"
	ConflictException                 = "ConflictException"
	FleetCapacityExceededException    = "FleetCapacityExceededException"
	// ThrottlingException is not in GameLift's model, but every AWS SDK retries it, with backoff, as a
	// throttle: the endpoint answers it to a key that exceeds its rate.
	ThrottlingException = "ThrottlingException"
)

// codec reads requests and writes responses in one wire protocol.
type codec interface {
	decode(body []byte, v any) error
	encode(v any) ([]byte, error)
	contentType() string
	errorBody(e *Error) ([]byte, error)
}

type jsonCodec struct{}

// decodeWith decodes body with unmarshal; an empty body is an empty input (the SDKs send none for a call
// without members).
func decodeWith(unmarshal func([]byte, any) error, body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	return unmarshal(body, v)
}

func (jsonCodec) decode(body []byte, v any) error { return decodeWith(json.Unmarshal, body, v) }
func (jsonCodec) encode(v any) ([]byte, error)    { return json.Marshal(v) }
func (jsonCodec) contentType() string             { return "application/x-amz-json-1.1" }
func (jsonCodec) errorBody(e *Error) ([]byte, error) {
	return json.Marshal(map[string]string{"__type": e.Type, "message": e.Message, "Message": e.Message})
}

type cborCodec struct{}

var cborEnc, _ = cbor.EncOptions{Time: cbor.TimeUnixDynamic, TimeTag: cbor.EncTagRequired}.EncMode()

func (cborCodec) decode(body []byte, v any) error { return decodeWith(cbor.Unmarshal, body, v) }
func (cborCodec) encode(v any) ([]byte, error)    { return cborEnc.Marshal(v) }
func (cborCodec) contentType() string             { return "application/cbor" }
func (cborCodec) errorBody(e *Error) ([]byte, error) {
	return cborEnc.Marshal(map[string]string{"__type": "com.amazonaws.gamelift#" + e.Type, "message": e.Message, "Message": e.Message})
}
