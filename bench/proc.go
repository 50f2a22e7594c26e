package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
)

// procStatusKiB returns a "kB" field of /proc/<proc>/status (VmRSS, VmHWM...) in KiB; proc is a
// pid or "self".
func procStatusKiB(proc, field string) (int64, error) {
	f, err := os.Open("/proc/" + proc + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%s/status", field, proc)
}

func rssKiB() int64 {
	v, err := procStatusKiB("self", "VmRSS")
	if err != nil {
		panic(err)
	}
	return v
}

// resetPeakRSS resets VmHWM of /proc/<proc> to its current RSS (Linux >= 4.0).
func resetPeakRSS(proc string) error {
	return os.WriteFile("/proc/"+proc+"/clear_refs", []byte("5"), 0)
}

// child starts this binary again with the given role and arguments.
func child(role string, args ...string) (*exec.Cmd, *bufio.Reader, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(exe, append([]string{"-role", role}, args...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	return cmd, bufio.NewReader(stdout), nil
}

// serverChild starts a server child and returns it with the want fields of the first line it
// prints (its addresses); the child is killed if that line does not come.
func serverChild(want int, role string, args ...string) (*exec.Cmd, []string, error) {
	cmd, out, err := child(role, args...)
	if err != nil {
		return nil, nil, err
	}
	line, err := out.ReadString('\n')
	f := strings.Fields(line)
	if err == nil && len(f) != want {
		err = fmt.Errorf("printed %q", line)
	}
	if err != nil {
		killChild(cmd)
		return nil, nil, fmt.Errorf("%s addresses: %w", role, err)
	}
	return cmd, f, nil
}

// killChild kills a server child and waits for it.
func killChild(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// runChild runs a measuring child to completion and decodes the JSON it prints on stdout.
func runChild(v any, role string, args ...string) error {
	cmd, out, err := child(role, args...)
	if err != nil {
		return err
	}
	decErr := json.NewDecoder(out).Decode(v)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s child: %w", role, err)
	}
	return decErr
}

// emit prints a child's result for the parent.
func emit(v any) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
