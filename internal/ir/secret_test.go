package ir

import (
	"encoding/json"
	"strings"
	"testing"
)

// The Jupyter token is a secret: it must not reach anything serialised
// from the IR (image labels), nor its digest, which an image carries too
// and which would let a short token be guessed offline.
func TestJupyterTokenIsNeverSerialised(t *testing.T) {
	with := &Environment{Jupyter: &Jupyter{Token: "s3cr3t-token", Port: 8888}}
	without := &Environment{Jupyter: &Jupyter{Port: 8888}}
	b, err := json.Marshal(with)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cr3t-token") {
		t.Errorf("the IR's JSON holds the token: %s", b)
	}
	if with.Digest() != without.Digest() {
		t.Error("the token changes the digest")
	}
}
