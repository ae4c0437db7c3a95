// Package docker is envd's narrow view of the Docker Engine: the calls the
// build and the runtime need, with errors a user can act on.
package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
)

// Client talks to the Docker daemon named by DOCKER_HOST (default: the local
// socket), or to one that ConnectVia reaches.
type Client struct {
	api *client.Client
	// puller, when set, pulls in place of the Docker API's pull (Podman's
	// ignores that a registry on 127.0.0.1 speaks plain http).
	puller Puller
}

// Puller pulls ref into the engine; auth is the X-Registry-Auth header's value.
type Puller interface {
	Pull(ctx context.Context, ref, auth string) error
}

// NotReachableError says Docker did not answer, and how to fix it.
type NotReachableError struct {
	Host string
	Err  error
	// Remote: the daemon is a server's, reached through ssh; Err says why not.
	Remote bool
}

func (e *NotReachableError) Error() string {
	if e.Remote {
		return fmt.Sprintf("cannot reach Docker on %s: %v", e.Host, e.Err)
	}
	if e.PermissionDenied() {
		return fmt.Sprintf("cannot reach Docker at %s: %v\n  hint: you may not use this Docker: join the docker group "+
			"(sudo usermod -aG docker $USER, then log in again), or use a Docker of your own with DOCKER_HOST", e.Host, e.Err)
	}
	return fmt.Sprintf("cannot reach Docker at %s: %v\n  hint: start it (systemctl start docker, or run dockerd in the background), "+
		"or build without Docker: envd build --output type=oci,dest=env.tar", e.Host, e.Err)
}

func (e *NotReachableError) Unwrap() error { return e.Err }

// PermissionDenied reports whether the socket refused this user.
func (e *NotReachableError) PermissionDenied() bool {
	return errors.Is(e.Err, fs.ErrPermission) || strings.Contains(e.Err.Error(), "permission denied")
}

// Connect returns a client once the daemon has answered a ping.
func Connect(ctx context.Context) (*Client, error) {
	api, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		api.Close()
		return nil, &NotReachableError{Host: host(), Err: err}
	}
	return &Client{api: api}, nil
}

// ConnectHost returns a client of the engine at host (unix:///path), once
// it has answered a ping; puller, if not nil, does its pulls.
func ConnectHost(ctx context.Context, host string, puller Puller) (*Client, error) {
	api, err := client.New(client.WithHost(host))
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		api.Close()
		return nil, &NotReachableError{Host: host, Err: err}
	}
	return &Client{api: api, puller: puller}, nil
}

// ConnectVia returns a client of the Docker that dial reaches (a server's,
// through ssh), once it has answered a ping; where names it in messages.
// Every connection the client opens is a new dial.
func ConnectVia(ctx context.Context, where string, dial func(ctx context.Context) (net.Conn, error)) (*Client, error) {
	api, err := client.New(
		// The host only shapes the request URLs; dial decides where they go.
		client.WithHost("unix:///var/run/docker.sock"),
		client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }),
	)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		api.Close()
		return nil, &NotReachableError{Host: where, Err: err, Remote: true}
	}
	return &Client{api: api}, nil
}

func host() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

func (c *Client) Close() error { return c.api.Close() }

// API exposes the underlying client for the runtime package.
func (c *Client) API() *client.Client { return c.api }

// Load streams an image tar (docker or OCI layout) into the daemon.
func (c *Client) Load(ctx context.Context, r io.Reader) error {
	resp, err := c.api.ImageLoad(ctx, r, client.ImageLoadWithQuiet(true))
	if err != nil {
		return err
	}
	defer resp.Close()
	// The daemon reports failures inside the JSON stream, not the status.
	dec := json.NewDecoder(resp)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading docker load response: %w", err)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			return errors.New(msg.ErrorDetail.Message)
		}
	}
}

// Image is what envd needs to know about a local image.
type Image struct {
	ID     string
	Size   int64
	Labels map[string]string
}

// ErrImageNotFound is returned by InspectImage for a missing image.
var ErrImageNotFound = errors.New("image not found")

// InspectImage returns the image named ref, or ErrImageNotFound.
func (c *Client) InspectImage(ctx context.Context, ref string) (*Image, error) {
	res, err := c.api.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return nil, ErrImageNotFound
	}
	if err != nil {
		return nil, err
	}
	img := &Image{ID: res.ID, Size: res.Size}
	if res.Config != nil {
		img.Labels = res.Config.Labels
	}
	return img, nil
}

// RemoveImage removes the image named ref; a missing image is not an error.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	_, err := c.api.ImageRemove(ctx, ref, client.ImageRemoveOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// ImageSummary is one image in a listing.
type ImageSummary struct {
	ID      string            `json:"id"`
	Tags    []string          `json:"tags"`
	Size    int64             `json:"size"`
	Created int64             `json:"created"`
	Labels  map[string]string `json:"-"`
}

// ListImages returns the images carrying label (any value); dangling ones
// (untagged, left behind when a rebuild moved the tag) only when dangling is set.
func (c *Client) ListImages(ctx context.Context, label string, dangling bool) ([]ImageSummary, error) {
	f := client.Filters{}.Add("label", label)
	if dangling {
		f = f.Add("dangling", "true")
	}
	res, err := c.api.ImageList(ctx, client.ImageListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	var out []ImageSummary
	for _, im := range res.Items {
		out = append(out, ImageSummary{ID: im.ID, Tags: im.RepoTags, Size: im.Size, Created: im.Created, Labels: im.Labels})
	}
	return out, nil
}

// PullAs pulls ref with the registry's user and password and tags it as
// name, then drops the ref's own tag, so only name remains. Docker fetches
// only the layers it does not have.
func (c *Client) PullAs(ctx context.Context, ref, name, user, password string) error {
	auth, err := json.Marshal(registry.AuthConfig{Username: user, Password: password})
	if err != nil {
		return err
	}
	if err := c.pull(ctx, ref, base64.URLEncoding.EncodeToString(auth)); err != nil {
		return err
	}
	if _, err := c.api.ImageTag(ctx, client.ImageTagOptions{Source: ref, Target: name}); err != nil {
		return err
	}
	return c.RemoveImage(ctx, ref)
}

func (c *Client) pull(ctx context.Context, ref, auth string) error {
	if c.puller != nil {
		return c.puller.Pull(ctx, ref, auth)
	}
	resp, err := c.api.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return err
	}
	return resp.Wait(ctx)
}
