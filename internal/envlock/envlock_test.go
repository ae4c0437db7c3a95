package envlock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
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
// not let two waiters in at once, one on the old file and one on a new one.
func TestRemoveWhileWaiting(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".x.lock")
	var mu sync.Mutex
	inside, maxInside := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				l, err := Acquire(context.Background(), path, "starting", 30*time.Second, nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inside++
				maxInside = max(maxInside, inside)
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				inside--
				mu.Unlock()
				if j%2 == 0 {
					l.Remove()
				} else {
					l.Release()
				}
			}
		}()
	}
	wg.Wait()
	if maxInside != 1 {
		t.Errorf("%d holders at once, want 1", maxInside)
	}
}
