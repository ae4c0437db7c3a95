package lang

// Limits on what a build file can make envd do: bytes it may contain, names
// it may not take, and memory its evaluation may use.

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"envd.dev/envd/internal/ir"
)

// DefaultMaxMemory bounds the memory (Go heap growth) one load may use.
// Real build files need well under a megabyte; 1 GiB leaves room for
// anything a build file can sensibly compute, fails within a second or two,
// and is far below the memory of any machine envd runs on.
const DefaultMaxMemory = 1 << 30

// checkSource rejects bytes Starlark's scanner would take for the end of
// the file (NUL) or pass into strings unseen (invalid UTF-8), at their
// position. Other control characters are reported by the scanner itself.
func checkSource(filename string, src []byte) error {
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		pos := ir.Pos{File: filename, Line: line, Col: col}
		switch {
		case r == 0:
			return ir.Errorf(pos, "the file is not text, or was corrupted: remove the NUL byte (an editor shows it as ^@ or \\0; `grep -nP '\\x00' FILE` finds it)",
				"NUL byte in the build file")
		case r == utf8.RuneError && size == 1:
			return ir.Errorf(pos, "build files are UTF-8 text: save the file as UTF-8, or write the character as an escape such as \"\\xe9\"",
				"invalid UTF-8 (byte 0x%02x)", src[i])
		case r == '\n':
			line, col = line+1, 0
		}
		i += size
		col++
	}
	return nil
}

// utf8BOM is what some editors put at the start of a UTF-8 file; Python
// ignores it, and so does envd.
var utf8BOM = []byte("\xef\xbb\xbf")

func trimBOM(src []byte) []byte { return bytes.TrimPrefix(src, utf8BOM) }

// checkShadowing rejects a def of an envd builtin's name anywhere, and any
// top-level binding of one (x = ..., for x in ...): Starlark would let it
// replace the builtin silently, and every later base(...) or install.*
// would call the user's value instead.
func checkShadowing(f *syntax.File) error {
	reserved := func(id *syntax.Ident, what string) error {
		if id == nil || !predeclared.Has(id.Name) || id.Name == "range" {
			return nil
		}
		return ir.Errorf(ir.Pos{File: id.NamePos.Filename(), Line: int(id.NamePos.Line), Col: int(id.NamePos.Col)},
			fmt.Sprintf("rename it (e.g. my_%s); %s is envd's own and is always there", id.Name, id.Name),
			"%s %q would replace envd's builtin %s", what, id.Name, id.Name)
	}
	var err error
	syntax.Walk(f, func(n syntax.Node) bool {
		if d, ok := n.(*syntax.DefStmt); ok && err == nil {
			err = reserved(d.Name, "def")
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	for _, stmt := range f.Stmts {
		var lhs syntax.Expr
		switch s := stmt.(type) {
		case *syntax.AssignStmt:
			lhs = s.LHS
		case *syntax.ForStmt:
			lhs = s.Vars
		}
		for _, id := range boundIdents(lhs) {
			if err := reserved(id, "assignment to"); err != nil {
				return err
			}
		}
	}
	return nil
}

// boundIdents lists the names an assignment's left side binds.
func boundIdents(e syntax.Expr) []*syntax.Ident {
	switch e := e.(type) {
	case *syntax.Ident:
		return []*syntax.Ident{e}
	case *syntax.ParenExpr:
		return boundIdents(e.X)
	case *syntax.TupleExpr:
		var ids []*syntax.Ident
		for _, x := range e.List {
			ids = append(ids, boundIdents(x)...)
		}
		return ids
	case *syntax.ListExpr:
		var ids []*syntax.Ident
		for _, x := range e.List {
			ids = append(ids, boundIdents(x)...)
		}
		return ids
	}
	return nil
}

// The hidden builtins every x * y and x + y of a build file call (see
// guardOps). Their names cannot be written in Starlark by accident.
const (
	mulFn  = "__envd_mul__"
	addFn  = "__envd_add__"
	iaddFn = "__envd_iadd__" // x += y: in place for lists, as Starlark does
	// x.join(...) and x.replace(...): the string methods whose result can
	// be far larger than their inputs.
	methodFn = "__envd_method__"
)

// sizedMethods are the methods guardOps routes through methodFn.
var sizedMethods = map[string]bool{"join": true, "replace": true}

var exprType = reflect.TypeOf((*syntax.Expr)(nil)).Elem()

// guardOps rewrites every x * y and x + y (and x *= y, x += y to a name)
// into a call of a builtin that checks the size of the result before
// Starlark makes it. [0] * 1000000000 is one step that allocates 16 GB, and
// a string doubled 33 times is one 8 GB copy: too quick, and too
// uninterruptible (the Go runtime cannot even stop the world during such a
// copy), for any watchdog to stop.
func guardOps(f *syntax.File) { rewriteNode(reflect.ValueOf(f)) }

func rewriteNode(v reflect.Value) {
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return
	}
	if _, ok := v.Interface().(syntax.Node); !ok {
		return
	}
	if a, ok := v.Interface().(*syntax.AssignStmt); ok && (a.Op == syntax.STAR_EQ || a.Op == syntax.PLUS_EQ) {
		if id, ok := a.LHS.(*syntax.Ident); ok {
			fn := mulFn
			if a.Op == syntax.PLUS_EQ {
				fn = iaddFn
			}
			rewriteField(reflect.ValueOf(a).Elem().FieldByName("RHS"))
			use := &syntax.Ident{NamePos: id.NamePos, Name: id.Name}
			a.Op, a.RHS = syntax.EQ, &syntax.CallExpr{
				Fn:     &syntax.Ident{NamePos: id.NamePos, Name: fn},
				Lparen: a.OpPos, Args: []syntax.Expr{use, a.RHS}, Rparen: a.OpPos,
			}
			return
		}
	}
	s := v.Elem()
	for i := 0; i < s.NumField(); i++ {
		if f := s.Field(i); f.CanSet() {
			rewriteField(f)
		}
	}
	// After the fields: x.join(a) becomes __envd_method__(x, "join", a).
	if c, ok := v.Interface().(*syntax.CallExpr); ok {
		if d, ok := c.Fn.(*syntax.DotExpr); ok && sizedMethods[d.Name.Name] {
			name := &syntax.Literal{Token: syntax.STRING, TokenPos: d.Name.NamePos, Raw: `"` + d.Name.Name + `"`, Value: d.Name.Name}
			c.Fn = &syntax.Ident{NamePos: syntax.Start(d), Name: methodFn}
			c.Args = append([]syntax.Expr{d.X, name}, c.Args...)
		}
	}
}

func rewriteField(f reflect.Value) {
	switch f.Kind() {
	case reflect.Pointer:
		rewriteNode(f)
	case reflect.Slice:
		for i := 0; i < f.Len(); i++ {
			rewriteField(f.Index(i))
		}
	case reflect.Interface:
		if f.IsNil() {
			return
		}
		rewriteNode(f.Elem())
		b, ok := f.Interface().(*syntax.BinaryExpr)
		if !ok || f.Type() != exprType || (b.Op != syntax.STAR && b.Op != syntax.PLUS) {
			return
		}
		fn := mulFn
		if b.Op == syntax.PLUS {
			fn = addFn
		}
		f.Set(reflect.ValueOf(&syntax.CallExpr{
			Fn:     &syntax.Ident{NamePos: syntax.Start(b), Name: fn},
			Lparen: b.OpPos, Args: []syntax.Expr{b.X, b.Y}, Rparen: b.OpPos,
		}))
	}
}

// elemBytes is the memory one element of a sequence takes, 0 for a value
// that is not a string, bytes, list or tuple.
func elemBytes(v starlark.Value) float64 {
	switch v.(type) {
	case starlark.String, starlark.Bytes:
		return 1
	case *starlark.List, starlark.Tuple:
		return 16 // one interface value
	}
	return 0
}

// checkSize refuses a result of size bytes that would take the load past
// its memory limit. Small results are not measured: reading the heap costs
// a microsecond.
func checkSize(thread *starlark.Thread, what string, size float64) error {
	if size < 1<<20 {
		return nil
	}
	s, _ := thread.Local(stateKey).(*state)
	limit, used := uint64(DefaultMaxMemory), uint64(0)
	if s != nil {
		limit, used = s.memLimit(), s.memUsed()
	}
	if size+float64(used) > float64(limit) && s != nil {
		runtime.GC() // what is used may be garbage
		used = s.memUsed()
	}
	if size+float64(used) > float64(limit) {
		return &memoryError{msg: fmt.Sprintf("this %s would take %s, and the build file already uses %s: more than its memory limit of %s",
			what, sizeOf(size), sizeOf(float64(used)), sizeOf(float64(limit)))}
	}
	return nil
}

// multiply is x * y, with a size check first.
func multiply(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("%s takes 2 arguments", mulFn)
	}
	x, y := args[0], args[1]
	seq, n := x, y
	if _, ok := x.(starlark.Int); ok {
		seq, n = y, x
	}
	if count, ok := n.(starlark.Int); ok && elemBytes(seq) > 0 {
		k, ok := count.Int64()
		size := float64(starlark.Len(seq)) * elemBytes(seq) * float64(k)
		if !ok {
			size = 1 << 62
		}
		if err := checkSize(thread, fmt.Sprintf("repetition (%d × %s elements of a %s)", starlark.Len(seq), count, seq.Type()), size); err != nil {
			return nil, err
		}
	}
	return starlark.Binary(syntax.STAR, x, y)
}

// add is x + y, with a size check first.
func add(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("%s takes 2 arguments", addFn)
	}
	if err := checkConcat(thread, args[0], args[1]); err != nil {
		return nil, err
	}
	return starlark.Binary(syntax.PLUS, args[0], args[1])
}

// addInPlace is x += y: a list is extended in place, as Starlark does.
func addInPlace(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("%s takes 2 arguments", iaddFn)
	}
	x, y := args[0], args[1]
	if err := checkConcat(thread, x, y); err != nil {
		return nil, err
	}
	if l, ok := x.(*starlark.List); ok {
		if _, ok := y.(starlark.Iterable); !ok {
			return nil, fmt.Errorf("unknown binary op: list += %s", y.Type())
		}
		extend, _ := l.Attr("extend")
		if _, err := starlark.Call(thread, extend, starlark.Tuple{y}, nil); err != nil {
			return nil, err
		}
		return l, nil
	}
	return starlark.Binary(syntax.PLUS, x, y)
}

// method calls a join or replace method, checking first the size of a
// string's result.
func method(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) < 2 {
		return nil, fmt.Errorf("%s takes a receiver and a name", methodFn)
	}
	recv, rest := args[0], args[2:]
	name, _ := starlark.AsString(args[1])
	if str, ok := recv.(starlark.String); ok {
		if err := checkSize(thread, "string "+name, stringResult(str, name, rest)); err != nil {
			return nil, err
		}
	}
	var fn starlark.Value
	if x, ok := recv.(starlark.HasAttrs); ok {
		var err error
		if fn, err = x.Attr(name); err != nil {
			return nil, err
		}
	}
	if fn == nil {
		return nil, fmt.Errorf("%s has no .%s field or method", recv.Type(), name)
	}
	return starlark.Call(thread, fn, rest, kwargs)
}

// stringResult is the size of s.join(args[0]) or s.replace(args[0],
// args[1]), or 0 when the arguments are not what they need (the method
// itself then says so).
func stringResult(s starlark.String, name string, args starlark.Tuple) float64 {
	switch {
	case name == "join" && len(args) == 1:
		it, ok := args[0].(starlark.Iterable)
		if !ok {
			return 0
		}
		iter := it.Iterate()
		defer iter.Done()
		var size, n float64
		var v starlark.Value
		for iter.Next(&v) {
			if x, ok := v.(starlark.String); ok {
				size += float64(len(x))
			}
			n++
		}
		// Starlark's join grows a strings.Builder by doubling: at its peak
		// it holds the old buffer and one up to twice the result.
		return 3 * (size + n*float64(len(s)))
	case name == "replace" && len(args) >= 2:
		old, ok1 := args[0].(starlark.String)
		repl, ok2 := args[1].(starlark.String)
		if !ok1 || !ok2 {
			return 0
		}
		n := float64(strings.Count(string(s), string(old)))
		return float64(len(s)) + n*float64(len(repl))
	}
	return 0
}

func checkConcat(thread *starlark.Thread, x, y starlark.Value) error {
	if e := elemBytes(x); e > 0 && elemBytes(y) > 0 {
		return checkSize(thread, "concatenation of a "+x.Type(), e*float64(starlark.Len(x)+starlark.Len(y)))
	}
	return nil
}

// memoryError is a memory bound hit; evalError adds the position and a hint.
type memoryError struct{ msg string }

func (e *memoryError) Error() string { return e.msg }

const memoryHint = "look for a value that grows without end (a string or list doubled in a loop) or a huge repetition such as [0] * 1000000000; a build file needs little memory"

func (s *state) memLimit() uint64 {
	if s.opts.MaxMemory > 0 {
		return s.opts.MaxMemory
	}
	return DefaultMaxMemory
}

// memUsed is how much the heap grew since the load began.
func (s *state) memUsed() uint64 {
	if h := heapBytes(); h > s.memBase {
		return h - s.memBase
	}
	return 0
}

func sizeOf(n float64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f bytes", n)
}

// boundedRange is Starlark's range, refused when longer than the step
// budget: Starlark code could not walk it anyway, and list(range(n)) would
// allocate it all in one step.
func boundedRange(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	v, err := starlark.Call(thread, starlark.Universe["range"], args, kwargs)
	if err != nil {
		return nil, err
	}
	max := DefaultMaxSteps
	if s, ok := thread.Local(stateKey).(*state); ok && s.opts.MaxSteps > 0 {
		max = int(s.opts.MaxSteps)
	}
	if n := starlark.Len(v); n > max {
		return nil, &memoryError{msg: fmt.Sprintf("range of %d numbers is longer than a build file may walk (%d steps)", n, max)}
	}
	return v, nil
}

// heapBytes is the memory of live and not yet collected Go objects.
func heapBytes() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

func liveHeapBytes() uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// watchMemory cancels the thread once the heap has grown by more than the
// limit since the load began (checked every few milliseconds, confirmed
// after a garbage collection). A doubling string stops within one doubling
// of the limit. If a single builtin call keeps allocating after the cancel
// (the thread only sees it between steps), abort is called once the heap
// passes twice the limit: the CLI exits there, so envd never eats the machine.
// The returned function stops the watch.
func (s *state) watchMemory(thread *starlark.Thread) (stop func()) {
	limit := s.memLimit()
	// Garbage of earlier work in the process (tests, a fuzzer) must not be
	// mistaken for room once collected: the base is at most what was live
	// at the last collection. Garbage counted as use is collected before
	// any verdict (below, and in checkSize).
	s.memBase = min(heapBytes(), liveHeapBytes())
	done := make(chan struct{})
	var stopped atomic.Bool
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			used := s.memUsed()
			if used <= limit {
				continue
			}
			if s.outOfMemory.Load() == 0 {
				runtime.GC()
				if s.memUsed() <= limit {
					continue // it was garbage
				}
				s.outOfMemory.Store(limit)
				thread.Cancel("build file uses too much memory")
				continue
			}
			if used > 2*limit && s.opts.Abort != nil && !stopped.Swap(true) {
				// The thread is inside one Go call that does not return; its
				// stack does not change meanwhile.
				pos, fn := s.innermostFrame(thread.CallStack())
				s.opts.Abort(s.memoryExceeded(pos, fn))
				return
			}
		}
	}()
	return func() { close(done) }
}

// memoryExceeded is the error of a load stopped by watchMemory.
func (s *state) memoryExceeded(pos ir.Pos, fn string) *ir.Error {
	msg := fmt.Sprintf("build file uses too much memory (more than %s)", sizeOf(float64(s.outOfMemory.Load())))
	if fn != "" && fn != "<toplevel>" {
		msg += fmt.Sprintf(" in %s()", fn)
	}
	return &ir.Error{Pos: pos, Msg: msg, Hint: memoryHint}
}

// fileGlobals is predeclared plus the builtins a file gets without seeing
// them: the bounded range and the checked multiplication.
// It is made in state.go's init, after predeclared.
var fileGlobals starlark.StringDict

func withHidden(predeclared starlark.StringDict) starlark.StringDict {
	g := starlark.StringDict{
		"range":  starlark.NewBuiltin("range", boundedRange),
		mulFn:    starlark.NewBuiltin("*", multiply),
		addFn:    starlark.NewBuiltin("+", add),
		iaddFn:   starlark.NewBuiltin("+=", addInPlace),
		methodFn: starlark.NewBuiltin("method", method),
	}
	for k, v := range predeclared {
		g[k] = v
	}
	return g
}
