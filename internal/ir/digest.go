package ir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Digest hashes what the environment asks for. Positions are left out, so
// moving a line or adding a comment does not change it.
func (e *Environment) Digest() string {
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		panic(err)
	}
	b, _ = json.Marshal(stripPos(v)) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func stripPos(v any) any {
	switch t := v.(type) {
	case map[string]any:
		delete(t, "pos")
		for k, x := range t {
			t[k] = stripPos(x)
		}
	case []any:
		for i, x := range t {
			t[i] = stripPos(x)
		}
	}
	return v
}
