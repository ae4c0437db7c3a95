package envlock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWaitsForHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envs", ".x.lock")
	first, err := Acquire(context.Background(), path, "starting", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen []Holder
	done := make(chan *Lock)
	go func() {
		l, err := Acquire(context.Background(), path, "removing", 10*time.Second, func(h Holder) { seen = append(seen, h) })
		if err != nil {
			t.Error(err)
		}
		done <- l
	}()
	select {
	case <-done:
		t.Fatal("second Acquire did not wait for the first")
	case <-time.After(300 * time.Millisecond):
	}
	first.Release()
	second := <-done
	defer second.Release()
	if len(seen) != 1 || seen[0].PID != os.Getpid() || seen[0].Action != "starting" {
		t.Errorf("onWait saw %+v, want one call naming pid %d starting", seen, os.Getpid())
	}
}

func TestBoundAndCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".x.lock")
	held, err := Acquire(context.Background(), path, "starting", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()

	_, err = Acquire(context.Background(), path, "starting", 250*time.Millisecond, nil)
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Holder.PID != os.Getpid() || busy.Waited < 250*time.Millisecond {
		t.Errorf("past the bound: %v, want a BusyError naming the holder", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, path, "starting", time.Minute, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled wait: %v, want the context's error", err)
	}
}

// TestRemoveWhileWaiting: a holder that deletes the file (envd down) must
// not let two in at once: a waiter on the old file and a newcomer who
// created a new one.
func TestRemoveWhileWaiting(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".x.lock")
	a, err := Acquire(context.Background(), path, "removing", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	got := make(chan *Lock)
	go func() {
		l, err := Acquire(context.Background(), path, "starting", 10*time.Second, func(Holder) { close(waiting) })
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	<-waiting // b has the old file open
	a.Remove()
	c, err := Acquire(context.Background(), path, "starting", time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
		t.Fatal("a waiter on the removed file got in while a newcomer holds the new one")
	case <-time.After(400 * time.Millisecond):
	}
	c.Release()
	(<-got).Release()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("lock file after the waiter got in: %v", err)
	}
}
