package lang

import (
	"errors"
	"strings"
	"testing"
	"time"

	"envd.dev/envd/internal/ir"
)

// Bad input: bytes that are not text, names that would replace builtins,
// and evaluation that would take the machine's memory. Each is an error at
// its place, quickly.
func TestBadInput(t *testing.T) {
	const img = `base(image="debian:bookworm")`
	tests := []struct {
		name string
		src  string
		pos  ir.Pos
		want string
	}{
		// Starlark's scanner takes NUL for the end of the file: everything after it was ignored.
		{"NUL at the start of a line", build(img) + "\x00garbage (((\n", at(3, 1), "NUL byte in the build file"},
		{"NUL in a string", build(img, "run([\"echo a\x00b\"])"), at(3, 17), "NUL byte"},
		{"NUL in a comment", "# note \x00\n" + build(img), at(1, 8), "NUL byte"},
		{"NUL after multibyte text", build(img, `# héllo`+"\x00"), at(3, 12), "NUL byte"},
		{"invalid UTF-8 in a string", build(img, "run([\"echo \xff\"])"), at(3, 16), "invalid UTF-8 (byte 0xff)"},
		{"control character", build(img, "\x01run([])"), at(3, 5), `unexpected input character '\x01'`},
		{"form feed", build(img) + "\f\n", at(3, 1), "syntax error"},

		// Names of builtins.
		{"def base", "def base(os):\n    pass\n\n" + build(`base(os="debian12")`), at(1, 5), `def "base" would replace envd's builtin base`},
		{"def inside build", build(img, "def run(x):", "    pass"), at(3, 9), `def "run" would replace envd's builtin run`},
		{"top-level assignment", "runtime = 1\n" + build(img), at(1, 1), `assignment to "runtime"`},
		{"tuple assignment", "a, io = 1, 2\n" + build(img), at(1, 4), `assignment to "io"`},
		{"for variable", "for config in []:\n    pass\n" + build(img), at(1, 5), `assignment to "config"`},

		// Memory: each would grow envd by gigabytes.
		{"list repetition", build(img, "l = [0] * 1000000000"), at(3, 9), "repetition (1 × 1000000000 elements of a list) would take 14.9 GiB"},
		{"repetition first", build(img, "l = 1000000000 * [0, 1]"), at(3, 9), "29.8 GiB"},
		{"huge count", build(img, `s = "x" * 100000000000000000000`), at(3, 9), "memory limit of 1.0 GiB"},
		{"string doubled", build(img, `s = "x"`, "for i in range(40):", "    s = s + s"), at(5, 13), "concatenation of a string would take 1.0 GiB"},
		{"string doubled in place", build(img, `s = "x"`, "for i in range(40):", "    s += s"), at(5, 9), "concatenation of a string"},
		{"string repeated in place", build(img, `s = "x"`, "for i in range(40):", "    s *= 2"), at(5, 9), "repetition"},
		{"list doubled", build(img, `l = [0]`, "for i in range(40):", "    l += l"), at(5, 9), "concatenation of a list"},
		{"join", build(img, `s = "x" * 1000000`, "l = [s] * 5000", `j = "-".join(l)`), at(5, 9), "string join would take 14.0 GiB"},
		{"replace", build(img, `s = "x" * 100000`, `r = s.replace("x", s)`), at(4, 9), "string replace would take 9.3 GiB"},
		{"list of a huge range", build(img, "l = list(range(2000000000))"), at(3, 14), "range of 2000000000 numbers is longer than a build file may walk"},
		{"growth in small steps", build(img, `l = []`, "for i in range(10000000):", `    l.append("x" * 1000 + str(i))`), at(5, 9), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Loader{MaxMemory: 256 << 20}.LoadSource(file, []byte(tt.src), "")
			if tt.want == "" { // the watchdog: position is the loop's, message general
				tt.want = "build file uses too much memory (more than 256.0 MiB) in build()"
				var e *ir.Error
				if !errors.As(err, &e) || e.Pos.Line < 4 || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %v, want %q in the loop", err, tt.want)
				}
				return
			}
			if strings.Contains(tt.want, "GiB") && strings.Contains(tt.want, "1.0 GiB") {
				_, err = LoadSource(file, []byte(tt.src), "") // the default limit
			}
			var e *ir.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *ir.Error", err)
			}
			if e.Pos != tt.pos || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v\nwant %q at %v", err, tt.want, tt.pos)
			}
			if e.Hint == "" {
				t.Errorf("no hint: %v", err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// The checked * and + behave as Starlark's own.
func TestCheckedOperators(t *testing.T) {
	src := build(`base(image="debian:bookworm")`,
		`a = [1]`, `b = a`, `a += [2]`, // in place: b sees it
		`n = 3`, `n *= 2`, `n += 1`,
		`s = "ab" * 2 + "c"`, `t = (1,) * 2 + (3,)`, `u = 2 * [0]`, `x = 1.5 * 2`,
		`d = {"k": [1]}`, `d["k"] += [2]`,
		`if b != [1, 2] or n != 7 or s != "ababc" or t != (1, 1, 3) or u != [0, 0] or x != 3.0 or d["k"] != [1, 2]:`,
		`    fail("wrong: %s %s %s %s %s %s %s" % (b, n, s, t, u, x, d))`,
		`j = ",".join(["a", "b"])`, `r = "aXb".replace("X", "-", 1)`, `if j != "a,b" or r != "a-b":`, `    fail(j + r)`,
		`run(["echo " + s])`)
	if _, err := LoadSource(file, []byte(src), ""); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ src, want string }{
		{`x = "a" * "b"`, "unknown binary op: string * string"},
		{`x = 1 + "b"`, "unknown binary op: int + string"},
		{`x = [1]` + "\n    " + `x += 1`, "unknown binary op: list += int"},
		{`x = (1,)` + "\n    " + `x += [1]`, "unknown binary op: tuple + list"},
		{`x = 1 .join([])`, "int has no .join field or method"},
		{`x = ",".join([1])`, "join: in list, want string, got int"},
	} {
		_, err := LoadSource(file, []byte(build(tt.src)), "")
		var e *ir.Error
		if !errors.As(err, &e) || e.Pos.Line < 2 || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.src, err, tt.want)
		}
	}
}

// A UTF-8 byte-order mark, which some editors write, is not an error.
func TestBOM(t *testing.T) {
	if _, err := LoadSource(file, []byte("\xef\xbb\xbf"+build(`base(image="debian:bookworm")`)), ""); err != nil {
		t.Fatal(err)
	}
}
