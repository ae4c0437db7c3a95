package buildkitd

import (
	"errors"
	"strings"
)

// Kinds of Error, for errors.Is: the CLI may want to react to one (e.g. offer
// `envd context create` when the user is not root).
var (
	ErrNotFound    = errors.New("buildkitd not found")
	ErrNoRunc      = errors.New("runc not found")
	ErrNotRoot     = errors.New("not root")
	ErrBadMirror   = errors.New("bad registry mirror")
	ErrSocketInUse = errors.New("socket in use")
	ErrExited      = errors.New("buildkitd exited during start-up")
	ErrTimeout     = errors.New("buildkitd did not answer in time")
)

// Error is a problem with the managed builder that the user can fix: what is
// wrong, what to do, and for a failed start the tail of buildkitd.log.
type Error struct {
	Kind error
	Msg  string
	Hint string
	Log  []string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("\n  hint: " + e.Hint)
	}
	if len(e.Log) > 0 {
		b.WriteString("\n  last lines of buildkitd.log:")
		for _, l := range e.Log {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

func (e *Error) Is(target error) bool { return target == e.Kind }
