// Package redistest starts real redis-server processes for tests: a single node on a
// free loopback port, or a three-master cluster.
//
// When redis-server is not installed the test is skipped, except when the
// environment variable CI is set: there a missing server fails the test, so that
// nothing that needs Redis is skipped silently in continuous integration.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server started for one test.
type Server struct {
	// Addr is the server's host:port.
	Addr string
	// URL is the server's redis:// URL.
	URL string
}

// Start starts a redis-server on a free port, stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	port := freePort(t)
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "yes",
		"--dir", dir, "--pidfile", filepath.Join(dir, "redis.pid"),
		"--logfile", filepath.Join(dir, "redis.log"),
	}
	startProcess(t, bin, args, dir)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitReady(t, addr)
	return &Server{Addr: addr, URL: "redis://" + addr}
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Cluster is a three-master Redis Cluster on loopback, started for one test.
type Cluster struct {
	// Addrs are the masters' host:port addresses.
	Addrs []string
}

// StartCluster starts three cluster-enabled redis-servers, joins them into one
// cluster and waits until every node reports cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := binary(t)
	var addrs []string
	for range 3 {
		dir := t.TempDir()
		port := freeClusterPort(t)
		args := []string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "yes",
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--dir", dir, "--pidfile", filepath.Join(dir, "redis.pid"),
			"--logfile", filepath.Join(dir, "redis.log"),
		}
		startProcess(t, bin, args, dir)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		waitReady(t, addr)
		addrs = append(addrs, addr)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found: %v", err)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		waitClusterOK(t, addr)
	}
	return &Cluster{Addrs: addrs}
}

// Client returns a cluster client, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// URL returns the comma-separated redis:// URLs of the cluster's nodes, in the form
// LeadRouter's REDIS_URL takes.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.Addrs))
	for i, a := range c.Addrs {
		urls[i] = "redis://" + a
	}
	return strings.Join(urls, ",")
}

func binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("redis-server is required in CI: %v", err)
	}
	t.Skip("redis-server not installed; the test command installs it")
	return ""
}

// startProcess runs a daemonizing redis-server and stops it when the test ends.
func startProcess(t testing.TB, bin string, args []string, dir string) {
	t.Helper()
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("start redis-server: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		pid, err := waitPID(filepath.Join(dir, "redis.pid"))
		if err != nil {
			return
		}
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
			p.Wait()
		}
	})
}

func waitPID(path string) (int, error) {
	var lastErr error
	for range 100 {
		b, err := os.ReadFile(path)
		if err == nil {
			return strconv.Atoi(strings.TrimSpace(string(b)))
		}
		lastErr = err
		time.Sleep(10 * time.Millisecond)
	}
	return 0, lastErr
}

func waitReady(t testing.TB, addr string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server at %s not ready: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitClusterOK(t testing.TB, addr string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := rdb.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster node %s not ok: %v %s", addr, err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeClusterPort finds a port whose cluster bus port (port+10000) is free too.
func freeClusterPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		port := freePort(t)
		if port+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+10000))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// ModeVar is the environment variable that switches New to a cluster: set it to
// "cluster" to run a package's Redis tests against a three-master Redis Cluster.
const ModeVar = "LEADROUTER_TEST_REDIS"

// New returns a client of a Redis started for the test: a single node, or a
// three-master cluster when ModeVar is "cluster". Tests written against New run
// unchanged on both, which is how cross-slot mistakes are caught.
func New(t testing.TB) redis.UniversalClient {
	t.Helper()
	if os.Getenv(ModeVar) == "cluster" {
		return StartCluster(t).Client(t)
	}
	return Start(t).Client(t)
}

// ForEachNode calls fn with a client of every node that holds data: the server
// itself for a single node, every master for a cluster. Server-wide commands
// (INFO, KEYS, SCAN, DBSIZE) must go through it to see a cluster's whole keyspace.
func ForEachNode(ctx context.Context, rdb redis.UniversalClient,
	fn func(ctx context.Context, node *redis.Client) error) error {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	default:
		return fmt.Errorf("redistest: unsupported client %T", rdb)
	}
}
