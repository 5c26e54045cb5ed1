package redact

import "testing"

func TestAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`Patch "https://127.0.0.1:33129/apis/game.playersessions.dev/v1alpha1/namespaces/soak/playersessions/p1/status": context canceled`,
			`Patch (cluster API): context canceled`},
		{`activating game session g: Put "https://10.96.0.1:443/apis/x": read tcp 10.0.0.2:40664->10.96.0.1:443: read: connection reset by peer`,
			`activating game session g: Put (cluster API): read tcp: read: connection reset by peer`},
		{`Post "https://127.0.0.1:45149/apis/agones.dev/v1/namespaces/soak/gameservers": dial tcp 127.0.0.1:45149: connect: connection refused`,
			`Post (cluster API): dial tcp: connect: connection refused`},
		{`write tcp [::1]:49158->[::1]:38187: write: broken pipe`, `write tcp: write: broken pipe`},
		{`Get "http://[::1]:8080/api": EOF; Post "https://h/b": EOF`, `Get (cluster API): EOF; Post (cluster API): EOF`},
		{`no admission decision within 10s; retry`, `no admission decision within 10s; retry`},
		{`Player "alice" is not "bob"`, `Player "alice" is not "bob"`},
	} {
		if got := Addresses(tc.in); got != tc.want {
			t.Errorf("Addresses(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
