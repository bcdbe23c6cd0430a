package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RequireDocker returns when the Docker engine and docker-compose can be
// used. Without the docker command the test is skipped; with it but
// without a reachable engine or docker-compose, the test is skipped too,
// except under CI=true, where it fails (CI machines with Docker must run
// the container tests).
func RequireDocker(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not on PATH: the Docker Compose tests need a Docker engine and docker-compose")
	}
	problem := ""
	if _, err := exec.LookPath("docker-compose"); err != nil {
		problem = "docker-compose is not on PATH"
	} else if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		problem = fmt.Sprintf("the Docker engine does not answer (docker version: %v: %s)", err, bytes.TrimSpace(out))
	}
	if problem == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; under CI=true a machine with docker must run the Docker Compose tests", problem)
	}
	t.Skip(problem + "; skipping the Docker Compose test")
}

// CheckStatic fails the test unless bin is a statically linked ELF
// executable: the image is FROM scratch, without a dynamic loader.
func CheckStatic(t testing.TB, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked: build it with CGO_ENABLED=0 (make build) for the FROM scratch image", bin)
		}
	}
}

// ComposeOptions describe a Compose cluster to start (deploy/docker-compose.yml).
type ComposeOptions struct {
	// StartTimeout bounds the wait until every container is healthy
	// (default 60 s).
	StartTimeout time.Duration
}

// Compose is a running deploy/docker-compose.yml cluster (3 controllers,
// 3 brokers) under a project name of its own, with an image of its own
// built from Binary, and its brokers' EXTERNAL listeners published on
// free loopback ports, so it never touches a cluster of `make
// compose-up`. Cleanup removes its containers, network, volumes and image.
type Compose struct {
	Project string
	File    string
	Image   string
	// HostPorts are the brokers' published EXTERNAL ports on 127.0.0.1,
	// broker-1 first.
	HostPorts []int
	// HTTPHostPorts are the brokers' published HTTP ports (/metrics,
	// /healthz, /readyz) on 127.0.0.1, broker-1 first.
	HTTPHostPorts []int

	t   testing.TB
	env []string

	mu struct {
		sync.Mutex
		ids      map[string]string // container id by service
		networks []string          // networks of NewNetwork, removed at cleanup
	}
}

// StartCompose builds the image, starts the cluster and waits until every
// container is healthy (its `skein health` check passes).
func StartCompose(t testing.TB, opts ComposeOptions) *Compose {
	t.Helper()
	RequireDocker(t)
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := Binary(t)
	CheckStatic(t, bin)
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	id := hex.EncodeToString(suffix[:])
	c := &Compose{
		Project: "skeintest" + id,
		File:    filepath.Join(root, "deploy", "docker-compose.yml"),
		Image:   "skein:test-" + id,
		t:       t,
	}
	c.env = append(os.Environ(), "SKEIN_IMAGE="+c.Image, "SKEIN_HOST_IP=127.0.0.1")
	for i := range 3 {
		_, p, _ := strings.Cut(FreeAddr(t), ":")
		port, _ := strconv.Atoi(p)
		c.HostPorts = append(c.HostPorts, port)
		c.env = append(c.env, fmt.Sprintf("SKEIN_HOST_PORT_%d=%d", i+1, port))
		_, p, _ = strings.Cut(FreeAddr(t), ":")
		port, _ = strconv.Atoi(p)
		c.HTTPHostPorts = append(c.HTTPHostPorts, port)
		c.env = append(c.env, fmt.Sprintf("SKEIN_HTTP_HOST_PORT_%d=%d", i+1, port))
	}

	start := time.Now()
	if out, err := c.command(2*time.Minute, filepath.Join(root, "deploy", "build-image.sh"), bin, c.Image); err != nil {
		t.Fatalf("build the image: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := c.command(time.Minute, "docker", "rmi", c.Image); err != nil {
			t.Errorf("remove image %s: %v\n%s", c.Image, err, out)
		}
	})
	t.Logf("built image %s in %v", c.Image, time.Since(start).Round(time.Millisecond))

	t.Cleanup(c.down)
	start = time.Now()
	if out, err := c.Compose(2*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	c.WaitHealthy(opts.StartTimeout)
	t.Logf("compose project %s healthy %v after up; brokers on the host at %s", c.Project,
		time.Since(start).Round(time.Millisecond), c.Bootstrap())
	return c
}

// Bootstrap is the brokers' EXTERNAL listeners as the host reaches them.
func (c *Compose) Bootstrap() string {
	addrs := make([]string, len(c.HostPorts))
	for i, p := range c.HostPorts {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return strings.Join(addrs, ",")
}

// Client returns a franz-go client seeded with the brokers' EXTERNAL
// listeners, as Cluster.Client; it is closed at cleanup.
func (c *Compose) Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClient(t, c.Bootstrap(), opts...)
}

// ReadAll is Cluster.ReadAll for the Compose cluster.
func (c *Compose) ReadAll(t testing.TB, topic string, timeout time.Duration) map[int32][]Stored {
	t.Helper()
	return readAll(t, c.Client, topic, timeout)
}

// Compose runs docker-compose with this cluster's project, file and
// environment, and returns its combined output.
func (c *Compose) Compose(timeout time.Duration, args ...string) (string, error) {
	return c.command(timeout, "docker-compose", append([]string{"-p", c.Project, "-f", c.File}, args...)...)
}

func (c *Compose) command(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return string(out), err
}

// Containers returns the project's containers: name -> "status health".
func (c *Compose) Containers() (map[string]string, error) {
	out, err := c.Compose(30*time.Second, "ps", "-q")
	if err != nil {
		return nil, fmt.Errorf("docker-compose ps: %w: %s", err, out)
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return map[string]string{}, nil
	}
	out, err = c.command(30*time.Second, "docker", append([]string{"inspect", "--format",
		"{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"}, ids...)...)
	if err != nil {
		return nil, fmt.Errorf("docker inspect: %w: %s", err, out)
	}
	states := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, state, _ := strings.Cut(strings.TrimPrefix(line, "/"), " ")
		states[name] = state
	}
	return states, nil
}

// WaitHealthy waits until the project's six containers are running and
// healthy.
func (c *Compose) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	WaitFor(c.t, timeout, c.Healthy)
}

// Healthy reports whether the project's six containers are running and
// healthy (their health checks, `skein health`, pass), and if not, which
// are not; a condition for WaitFor or Poll.
func (c *Compose) Healthy() (bool, string) {
	states, err := c.Containers()
	if err != nil {
		return false, err.Error()
	}
	var waiting []string
	for name, s := range states {
		if s != "running healthy" {
			waiting = append(waiting, name+" "+s)
		}
	}
	sort.Strings(waiting)
	if len(states) < 6 || len(waiting) > 0 {
		return false, fmt.Sprintf("%d containers, not healthy yet: %v", len(states), waiting)
	}
	return true, ""
}

// Docker runs the docker command with args (bounded by timeout) and
// returns its combined output.
func (c *Compose) Docker(timeout time.Duration, args ...string) (string, error) {
	out, err := c.command(timeout, "docker", args...)
	if err != nil {
		return out, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out))
	}
	return out, nil
}

// Container returns the id of the container of a service (broker-1,
// controller-2, ...). It stays the same across stops, starts, pauses and
// network changes.
func (c *Compose) Container(service string) (string, error) {
	c.mu.Lock()
	id, ok := c.mu.ids[service]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	out, err := c.Compose(30*time.Second, "ps", "-q", service)
	if err != nil {
		return "", fmt.Errorf("docker-compose ps -q %s: %w: %s", service, err, out)
	}
	ids := strings.Fields(out)
	if len(ids) != 1 {
		return "", fmt.Errorf("service %s: containers %v, want one", service, ids)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.ids == nil {
		c.mu.ids = map[string]string{}
	}
	c.mu.ids[service] = ids[0]
	return ids[0], nil
}

// Network is the name of the project's network (the `skein` network of
// the Compose file).
func (c *Compose) Network() string { return c.Project + "_skein" }

// NewNetwork creates a bridge network of this project, named
// PROJECT_suffix, and returns its name; it is removed at cleanup, after
// the containers.
func (c *Compose) NewNetwork(suffix string) (string, error) {
	name := c.Project + "_" + suffix
	if _, err := c.Docker(time.Minute, "network", "create", "--label", "com.docker.compose.project="+c.Project, name); err != nil {
		return "", err
	}
	c.mu.Lock()
	c.mu.networks = append(c.mu.networks, name)
	c.mu.Unlock()
	return name, nil
}

// down prints the containers' logs when the test failed, then removes the
// containers, the network and the volumes.
func (c *Compose) down() {
	if c.t.Failed() {
		if out, err := c.Compose(time.Minute, "logs", "--no-color", "--tail", "40"); err == nil {
			c.t.Logf("---- docker-compose logs (last 40 lines of each) ----\n%s", out)
		}
	}
	start := time.Now()
	// A test that failed in the middle of a fault may leave containers
	// paused, which docker-compose down cannot stop.
	if out, err := c.Compose(time.Minute, "ps", "-q"); err == nil && len(strings.Fields(out)) > 0 {
		if out, err := c.command(time.Minute, "docker", append([]string{"inspect", "--format", "{{.Id}} {{.State.Paused}}"}, strings.Fields(out)...)...); err == nil {
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if id, paused, _ := strings.Cut(line, " "); paused == "true" {
					if out, err := c.command(time.Minute, "docker", "unpause", id); err != nil {
						c.t.Errorf("docker unpause %s: %v\n%s", id, err, out)
					}
				}
			}
		}
	}
	if out, err := c.Compose(2*time.Minute, "down", "-v", "--remove-orphans", "--timeout", "20"); err != nil {
		c.t.Errorf("docker-compose down: %v\n%s", err, out)
	}
	c.mu.Lock()
	networks := c.mu.networks
	c.mu.Unlock()
	for _, n := range networks {
		if out, err := c.command(time.Minute, "docker", "network", "rm", n); err != nil {
			c.t.Errorf("docker network rm %s: %v\n%s", n, err, out)
		}
	}
	c.t.Logf("docker-compose down -v took %v", time.Since(start).Round(time.Millisecond))
}
