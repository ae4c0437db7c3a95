package envs

import (
	"context"
	"errors"
	"fmt"

	"envd.dev/envd/internal/runtime"
	"envd.dev/envd/internal/sshconfig"
)

// Down removes the environment, its ssh entry and pin, and what envd kept
// for it on this machine. A runtime that keeps a copied project keeps it
// (destroy removes it too). It returns the environment as it was.
func (m *Manager) Down(ctx context.Context, name string, destroy bool) (*runtime.Env, error) {
	if sshconfig.ValidateName(name) != nil {
		return nil, NotFound(name) // up never made it; and it names the lock file
	}
	lock, err := m.lock(ctx, name, "removing")
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	if err := m.checkOwner(name); err != nil {
		return nil, err // and its state is left alone
	}
	env, err := m.Runtime.Get(ctx, name)
	destroyer, keeps := m.Runtime.(runtime.Destroyer)
	if errors.Is(err, runtime.ErrNotFound) {
		m.forget(name, lock) // what a failed up of an older envd left
		if destroy && keeps {
			// down already removed the environment; destroy takes what it kept.
			if derr := destroyer.Destroy(ctx, name); derr == nil {
				return &runtime.Env{Name: name}, m.removeSSHEntry(name)
			} else if !errors.Is(derr, runtime.ErrNotFound) {
				return nil, derr
			}
		}
		return nil, NotFound(name)
	}
	if err != nil {
		return nil, err
	}
	owner, err := m.ownerID()
	if err != nil {
		return nil, err
	}
	if err := m.checkMadeHere(env, owner); err != nil {
		return nil, err
	}
	if err := m.StopForwarder(name); err != nil {
		return nil, err
	}
	if err := m.Runtime.Remove(ctx, name); err != nil {
		return nil, err
	}
	if err := m.removeSSHEntry(name); err != nil {
		return nil, err
	}
	m.forget(name, lock) // the host key goes with the environment and its pin
	if destroy && keeps {
		if err := destroyer.Destroy(ctx, name); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			return nil, fmt.Errorf("removing what %s kept: %w", name, err)
		}
	}
	return env, nil
}
