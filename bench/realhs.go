package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sealbridge/sealbridge/test/stack"
)

// runRealHSPhase measures real_hs_irc_to_matrix_us_per_msg and real_hs_matrix_to_irc_us_per_msg:
// the whole bridge's CPU per message against the test stack's real Dendrite, InspIRCd and E2EE
// matrix-js-sdk client, by running BenchmarkRealHomeserver (test/faults/realhs_test.go, which reuses
// the fault suite's world) for o.realHSRounds rounds; each figure is the median round. It needs
// the stack that test/install.sh installs (make test does); without it the phase says so and
// measures nothing.
func runRealHSPhase(o options, r *results) ([]string, error) {
	if _, err := os.Stat(filepath.Join(stack.ToolsBin(), "dendrite")); err != nil {
		return []string{"real_hs_*: not measured: the test stack is not installed (test/install.sh, which make test runs)"}, nil
	}
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	rounds := max(1, o.realHSRounds)
	cmd := exec.Command(goBin, "test", "-tags", "goolm,e2e", "-count=1", "-run", "^$", "-bench", "^BenchmarkRealHomeserver$",
		"-benchtime", fmt.Sprintf("%dx", rounds), "-timeout", "90m", "./test/faults/")
	cmd.Env = append(os.Environ(), "SEALBRIDGE_BENCH_LINES="+strconv.Itoa(o.realHSLines))
	if o.bridgeProfile != "" {
		dir, err := filepath.Abs(o.bridgeProfile)
		if err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env, "SEALBRIDGE_BENCH_PPROF="+dir)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("BenchmarkRealHomeserver: %v\n%s", err, tailLines(string(out), 30))
	}
	i2m, ok1 := benchMetric(string(out), "irc_to_matrix_us/msg")
	m2i, ok2 := benchMetric(string(out), "matrix_to_irc_us/msg")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("BenchmarkRealHomeserver printed no figures:\n%s", tailLines(string(out), 30))
	}
	r.RealHSIRCToMatrixUSPerMsg, r.RealHSMatrixToIRCUSPerMsg = round2(i2m), round2(m2i)
	spread := func(name string) string {
		lo, ok1 := benchMetric(string(out), name+"_min_us/msg")
		hi, ok2 := benchMetric(string(out), name+"_max_us/msg")
		if !ok1 || !ok2 {
			return ""
		}
		return fmt.Sprintf(" (rounds %.0f..%.0f)", lo, hi)
	}
	return []string{fmt.Sprintf("real_hs: %d lines each way, %d rounds, Dendrite + InspIRCd (no throttle) + matrix-js-sdk (test/faults BenchmarkRealHomeserver, %s): bridge CPU until idle, median round IRC->Matrix %.0f us/msg%s, Matrix->IRC %.0f us/msg%s",
		o.realHSLines, rounds, time.Since(start).Round(time.Second), i2m, spread("irc_to_matrix"), m2i, spread("matrix_to_irc"))}, nil
}

// benchMetric finds "<value> <unit>" on a Go benchmark's result line.
func benchMetric(out, unit string) (float64, bool) {
	m := regexp.MustCompile(`([0-9.]+) ` + regexp.QuoteMeta(unit)).FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
