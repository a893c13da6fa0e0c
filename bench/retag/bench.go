package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hoist-ci/hoist/internal/testrig"
)

const (
	scenarioAnonymous = "anonymous"
	scenarioToken     = "token"
	scenarioHtpasswd  = "htpasswd"

	benchUser     = "bench"
	benchPassword = "bench-password" // a throwaway credential of a loopback registry
)

// side is one of the two tools compared.
type side int

const (
	hoist side = iota
	crane
)

func (s side) String() string {
	if s == hoist {
		return "hoist"
	}
	return "crane"
}

// span is one process run, as offsets from the side's epoch.
type span struct {
	start time.Duration
	end   time.Duration
}

// sideRun is one tool's part of one round.
type sideRun struct {
	wall  time.Duration
	procs []span
	recs  []record
}

// round is one measured round: both tools on the same fresh image.
type round struct {
	hoistFirst bool
	sides      [2]sideRun
}

// bench runs one scenario: its own registry, proxies and rounds.
type bench struct {
	cfg      config
	tools    tools
	scenario string
	log      io.Writer

	direct  string // uncounted proxy host:port, for pushes and checks
	proxies [2]*countingProxy
	env     []string // environment of the tools under test
	workdir string   // their working directory
	auth    authn.Authenticator
}

func (b *bench) run(ctx context.Context) ([]round, error) {
	dir, err := os.MkdirTemp("", "hoist-bench-retag-")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	user, password := "", ""
	var tokens http.Handler
	opts := testrig.RegistryOptions{Binary: b.tools.registry, Quiet: true}
	switch b.scenario {
	case scenarioHtpasswd:
		// As `htpasswd -B` hashes: bcrypt cost 5, checked on every request.
		user, password = benchUser, benchPassword
		opts.Users, opts.HtpasswdCost = map[string]string{user: password}, 5
	case scenarioToken:
		user, password = benchUser, benchPassword
		cert := filepath.Join(dir, "token.crt")
		ts, err := newTokenServer(user, password, cert)
		if err != nil {
			return nil, err
		}
		tokens = ts
		opts.AuthConfig = ts.authConfig(cert)
	}
	b.auth = authn.Anonymous
	if user != "" {
		b.auth = &authn.Basic{Username: user, Password: password}
	}
	reg, err := testrig.StartRegistry(ctx, dir, opts)
	if err != nil {
		return nil, err
	}
	defer reg.Stop()
	setup, err := startProxy(reg.Host, tokens, false)
	if err != nil {
		return nil, err
	}
	defer setup.close()
	b.direct = setup.host
	for _, s := range []side{hoist, crane} {
		p, err := startProxy(reg.Host, tokens, true)
		if err != nil {
			return nil, err
		}
		defer p.close()
		b.proxies[s] = p
	}
	if err := b.prepareEnv(dir, user, password); err != nil {
		return nil, err
	}
	fmt.Fprintf(b.log, "scenario %s: registry %s, proxies hoist %s crane %s\n", b.scenario, reg.Host, b.proxies[hoist].host, b.proxies[crane].host)

	var rounds []round
	for i := 0; i < b.cfg.warmup+b.cfg.rounds; i++ {
		r, err := b.round(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", i+1, err)
		}
		label := "warm-up"
		if i >= b.cfg.warmup {
			rounds = append(rounds, r)
			label = "round " + strconv.Itoa(i-b.cfg.warmup+1)
		}
		fmt.Fprintf(b.log, "  %-9s hoist %7.1f ms  crane %7.1f ms  (%s first)\n", label,
			ms(r.sides[hoist].wall), ms(r.sides[crane].wall), first(r.hoistFirst))
	}
	if b.cfg.trace && len(rounds) > 0 {
		last := rounds[len(rounds)-1]
		for _, s := range []side{hoist, crane} {
			fmt.Fprintf(b.log, "trace %s %s (last round):\n%s", b.scenario, s, traceText(last.sides[s]))
		}
	}
	return rounds, nil
}

func first(hoistFirst bool) string {
	if hoistFirst {
		return "hoist"
	}
	return "crane"
}

// prepareEnv gives both tools the same minimal environment: an empty HOME, a
// DOCKER_CONFIG holding only the benchmark registry's credentials (for the
// htpasswd scenario), no CI variables, and a working directory of their own.
func (b *bench) prepareEnv(dir, user, password string) error {
	home := filepath.Join(dir, "home")
	dockerConfig := filepath.Join(dir, "docker-config")
	b.workdir = filepath.Join(dir, "work")
	for _, d := range []string{home, dockerConfig, b.workdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	auths := map[string]any{}
	if user != "" {
		cred := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		for _, h := range []string{b.direct, b.proxies[hoist].host, b.proxies[crane].host} {
			auths[h] = map[string]string{"auth": cred}
		}
	}
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		return fmt.Errorf("encoding the docker config: %w", err)
	}
	path := filepath.Join(dockerConfig, "config.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	b.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"DOCKER_CONFIG=" + dockerConfig,
		"TMPDIR=" + os.TempDir(),
		"LANG=C.UTF-8",
	}
	return nil
}

// round pushes a fresh image to bench/hoist:<sha> and bench/crane:<sha>, lets
// each tool write its tags (alternating who goes first) and checks every tag.
func (b *bench) round(ctx context.Context, i int) (round, error) {
	r := round{hoistFirst: i%2 == 0}
	sha, err := shortSHA()
	if err != nil {
		return r, err
	}
	img, err := random.Image(4096, 3)
	if err != nil {
		return r, fmt.Errorf("generating a random image: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return r, fmt.Errorf("computing the random image's digest: %w", err)
	}
	for _, s := range []side{hoist, crane} {
		if err := b.push(ctx, b.repo(b.direct, s)+":"+sha, img); err != nil {
			return r, err
		}
	}
	order := []side{hoist, crane}
	if !r.hoistFirst {
		order = []side{crane, hoist}
	}
	for _, s := range order {
		source := b.repo(b.proxies[s].host, s) + ":" + sha
		var sr sideRun
		if s == hoist {
			sr, err = b.runHoist(ctx, source)
		} else {
			sr, err = b.runCrane(ctx, source)
		}
		if err != nil {
			return r, err
		}
		if err := b.verify(ctx, s, sha, digest); err != nil {
			return r, err
		}
		r.sides[s] = sr
	}
	return r, nil
}

func (b *bench) repo(host string, s side) string { return host + "/bench/" + s.String() }

func (b *bench) tagNames() []string {
	tags := make([]string, b.cfg.tags)
	for i := range tags {
		tags[i] = "t" + strconv.Itoa(i+1)
	}
	return tags
}

func shortSHA() (string, error) {
	buf := make([]byte, 4)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return hex.EncodeToString(buf), nil
}

func (b *bench) push(ctx context.Context, s string, img v1.Image) error {
	ref, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", s, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(b.auth)); err != nil {
		return fmt.Errorf("pushing %s: %w", s, err)
	}
	return nil
}

// verify checks, on the registry directly, that the source and every tag of
// side s resolve to want.
func (b *bench) verify(ctx context.Context, s side, sha string, want v1.Hash) error {
	repo := b.repo(b.direct, s)
	for _, tag := range append([]string{sha}, b.tagNames()...) {
		ref, err := name.ParseReference(repo+":"+tag, name.Insecure)
		if err != nil {
			return fmt.Errorf("parsing %s:%s: %w", repo, tag, err)
		}
		desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(b.auth))
		if err != nil {
			return fmt.Errorf("checking %s's result %s: %w", s, ref, err)
		}
		if desc.Digest != want {
			return fmt.Errorf("%s wrote %s at %s, want the source digest %s", s, ref, desc.Digest, want)
		}
	}
	return nil
}

func (b *bench) runHoist(ctx context.Context, source string) (sideRun, error) {
	args := []string{
		"--source", source,
		"--tags", strings.Join(b.tagNames(), ","),
		"--semver-aliases", "false",
		"--latest", "false",
		"--insecure-registries", b.proxies[hoist].host,
	}
	return b.runSide(ctx, hoist, [][]string{append([]string{b.tools.retag}, args...)})
}

func (b *bench) runCrane(ctx context.Context, source string) (sideRun, error) {
	var argvs [][]string
	for _, tag := range b.tagNames() {
		argvs = append(argvs, []string{b.tools.crane, "tag", "--insecure", source, tag})
	}
	return b.runSide(ctx, crane, argvs)
}

// runSide runs the processes one after the other, as a pipeline script does,
// and returns the wall time from the first start to the last exit.
func (b *bench) runSide(ctx context.Context, s side, argvs [][]string) (sideRun, error) {
	rec := b.proxies[s].rec
	epoch := time.Now()
	rec.reset(epoch)
	var sr sideRun
	for _, argv := range argvs {
		sp, err := b.exec(ctx, epoch, argv)
		if err != nil {
			return sr, err
		}
		sr.procs = append(sr.procs, sp)
	}
	sr.wall = time.Since(epoch)
	sr.recs = rec.take()
	return sr, nil
}

func (b *bench) exec(ctx context.Context, epoch time.Time, argv []string) (span, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = b.workdir
	cmd.Env = b.env
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Since(epoch)
	err := cmd.Run()
	end := time.Since(epoch)
	if err != nil {
		return span{}, fmt.Errorf("running %s: %w\n%s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return span{start: start, end: end}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
