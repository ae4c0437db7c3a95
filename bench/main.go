// Command bench builds the same environment with `envd build`, `docker build` on the legacy builder and `docker
// build` on BuildKit, through the same scenarios (cold, no-op, add a Python package, change an apt package, edit
// requirements.txt, switch the base image tag), several repetitions each, on this machine and in one run. It
// writes docs/benchmarks.md (min and median per cell, the machine, versions, commands, load) and
// docs/benchmarks.svg.
//
//	go run ./bench                              everything, 3 repetitions (-synthetic-reps for the 634 MB workload)
//	go run ./bench -workloads synthetic -tools envd,docker-buildkit -reps 2
//	go run ./bench -smoke                       one repetition, tiny wheels (PEP 658 and plain index), envd only: exits 1 when a check fails
//
// It needs root and `make setup` (Docker, the registry mirror on 127.0.0.1:5000, bin/envd: its own buildkitd), and
// it removes what it starts and creates (its buildkitd, package indexes, temporary directories, images), also
// when it fails or is interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

type options struct {
	reps          int
	syntheticReps int
	workloads     []string
	tools         []string
	scenarios     []string
	smoke         bool
	out, chart    string
	envd          string
	buildkitd     string
	docker        string
	mirror        string // host:port of the docker.io mirror
	registry      string // a Distribution registry binary, for the team cache
	throttleMbit  int64
	timeout       time.Duration
	tmp           string   // parent of the run's temporary directory
	logs          string   // where each build's output is kept, if set
	args          []string // as given, for the report
}

func parseFlags(args []string) (options, error) {
	o := options{args: args}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.reps, "reps", 3, "repetitions of every scenario sequence")
	fs.IntVar(&o.syntheticReps, "synthetic-reps", 0, "repetitions for the synthetic (634 MB) workload (default: -reps)")
	workloads := fs.String("workloads", "synthetic,synthetic-plain,pypi", "workloads to run: "+strings.Join(workloadNames, ","))
	tools := fs.String("tools", strings.Join(toolNames, ","), "tools to compare: "+strings.Join(toolNames, ","))
	scen := fs.String("scenarios", strings.Join(scenarioNames(), ","), "scenarios, run in this order from a cold start (cold is required)")
	fs.BoolVar(&o.smoke, "smoke", false, "smoke mode: one repetition of the tiny workload with envd only; exit 1 when a check fails")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "report to write (not written in smoke mode)")
	fs.StringVar(&o.chart, "chart", "docs/benchmarks.svg", "chart to write (not written in smoke mode)")
	fs.StringVar(&o.envd, "envd", "bin/envd", "the envd binary under test (copied for the run)")
	fs.StringVar(&o.buildkitd, "buildkitd", "", "a buildkitd for envd to start (copied for the run); default: envd is its own")
	fs.StringVar(&o.docker, "docker", "/usr/bin/docker", "docker client (Debian's; a newer one refuses DOCKER_BUILDKIT=1 without buildx)")
	fs.StringVar(&o.mirror, "mirror", "127.0.0.1:5000", "docker.io registry mirror (host:port, plain HTTP)")
	fs.StringVar(&o.registry, "registry", "/usr/bin/docker-registry", "Distribution registry binary the team-cache scenario serves the team's registry with")
	fs.Int64Var(&o.throttleMbit, "throttle-mbit", 300, "bandwidth of the synthetic package index, in Mbit/s")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "limit for one build")
	fs.StringVar(&o.tmp, "tmp", "/tmp", "where the run's temporary directory goes (keep it short: the builder's socket is below it)")
	fs.StringVar(&o.logs, "logs", "", "directory to keep each build's output in (WORKLOAD-TOOL-REP-SCENARIO.log), for a closer look at its steps")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.workloads, o.tools, o.scenarios = split(*workloads), split(*tools), split(*scen)
	if o.smoke {
		o.reps, o.syntheticReps, o.workloads, o.tools = 1, 1, []string{"tiny", "tiny-plain"}, []string{"envd"}
	}
	if o.syntheticReps == 0 {
		o.syntheticReps = o.reps
	}
	if o.reps < 1 || o.syntheticReps < 1 {
		return o, errors.New("-reps and -synthetic-reps must be at least 1")
	}
	for _, w := range o.workloads {
		if !slices.Contains(workloadNames, w) && w != "tiny" && w != "tiny-plain" {
			return o, fmt.Errorf("unknown workload %q (known: %s)", w, strings.Join(workloadNames, ", "))
		}
	}
	for _, t := range o.tools {
		if !slices.Contains(toolNames, t) {
			return o, fmt.Errorf("unknown tool %q (known: %s)", t, strings.Join(toolNames, ", "))
		}
	}
	for _, s := range o.scenarios {
		if !slices.Contains(scenarioNames(), s) {
			return o, fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(scenarioNames(), ", "))
		}
	}
	if !slices.Contains(o.scenarios, "cold") {
		return o, errors.New("-scenarios must include cold: every other scenario starts from it")
	}
	if len(o.workloads) == 0 || len(o.tools) == 0 {
		return o, errors.New("no workload or no tool selected")
	}
	return o, nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(args []string) int {
	o, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bench{o: o}
	err = b.run(ctx)
	// Cleanup runs on every path, with its own context: an interrupt must not stop it.
	if cerr := b.cleanup(); cerr != nil {
		fmt.Fprintln(os.Stderr, "bench: cleanup:", cerr)
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}
