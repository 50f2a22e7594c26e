package stack

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq" // driver "postgres"
)

// pgBinDir is where Debian's postgresql-15 package puts its programs.
const pgBinDir = "/usr/lib/postgresql/15/bin"

// Postgres is a private PostgreSQL 15 cluster listening on 127.0.0.1.
type Postgres struct {
	URL     string // superuser connection to database "postgres", sslmode=disable
	Host    string // 127.0.0.1
	Port    int
	User    string // "postgres" (trust authentication, no password)
	DataDir string // the cluster; see Dir
	// Dir is the directory given to StartPostgres (postgres.log). The
	// cluster itself lives in a private directory under os.TempDir() that
	// the postgres OS user can reach (the caller's dir may be private to
	// root), removed again by Stop.
	Dir string

	privateDir string
	proc       *process
}

// StartPostgres initialises a new cluster (initdb, trust authentication,
// UTF-8, fsync off) and starts postgres on a free 127.0.0.1 port with its
// unix socket in the cluster's private directory. When running as root,
// initdb and postgres run as the postgres OS user (postgres refuses root).
// It returns once a connection succeeds.
func StartPostgres(ctx context.Context, dir string) (*Postgres, error) {
	dir, err := absDir(dir)
	if err != nil {
		return nil, err
	}
	for _, b := range []string{"initdb", "postgres"} {
		if err := needFile(filepath.Join(pgBinDir, b)); err != nil {
			return nil, err
		}
	}
	cred, uid, gid, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	private, err := os.MkdirTemp("", "sealbridge-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Host: "127.0.0.1", User: "postgres", Dir: dir, privateDir: private, DataDir: filepath.Join(private, "data")}
	fail := func(err error) (*Postgres, error) {
		p.Stop()
		return nil, err
	}
	sockDir := filepath.Join(private, "socket")
	for _, d := range []string{p.DataDir, sockDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fail(err)
		}
		if cred != nil {
			if err := os.Chown(d, uid, gid); err != nil {
				return fail(err)
			}
		}
	}
	if err := os.Chmod(private, 0o755); err != nil { // MkdirTemp made it 0700
		return fail(err)
	}

	initdb := exec.CommandContext(ctx, filepath.Join(pgBinDir, "initdb"),
		"-D", p.DataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = private
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v: %s", err, out))
	} else if err := os.WriteFile(filepath.Join(dir, "initdb.log"), out, 0o644); err != nil {
		return fail(err)
	}

	if p.Port, err = FreePort(); err != nil {
		return fail(err)
	}
	p.URL = p.urlFor("postgres")
	p.proc, err = startProcess(ctx, dir, "postgres", []string{
		filepath.Join(pgBinDir, "postgres"),
		"-D", p.DataDir,
		"-p", strconv.Itoa(p.Port),
		"-k", sockDir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "logging_collector=off",
	}, func(cmd *exec.Cmd) {
		cmd.Dir = private
		cmd.SysProcAttr.Credential = cred
	})
	if err != nil {
		return fail(err)
	}
	err = waitFor(ctx, p.proc, "PostgreSQL to accept connections", func(ctx context.Context) error {
		db, err := sql.Open("postgres", p.URL)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	})
	if err != nil {
		return fail(err)
	}
	return p, nil
}

// CreateDatabase creates a database and returns its connection URL.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (url string, err error) {
	db, err := sql.Open("postgres", p.URL)
	if err != nil {
		return "", err
	}
	defer db.Close()
	quoted := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+quoted); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return p.urlFor(name), nil
}

func (p *Postgres) urlFor(dbname string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", p.User, p.Host, p.Port, dbname)
}

// Stop shuts postgres down (SIGINT: fast shutdown) and removes the
// cluster. It is safe to call twice and after postgres died.
func (p *Postgres) Stop() error {
	if p == nil {
		return nil
	}
	err := p.proc.stop(syscall.SIGINT, 10*time.Second)
	if p.privateDir != "" {
		if rerr := os.RemoveAll(p.privateDir); rerr != nil && err == nil {
			err = rerr
		}
		p.privateDir = ""
	}
	return err
}

// postgresCredential returns the postgres OS user's credential when running
// as root, or nil to run as the current user.
func postgresCredential() (*syscall.Credential, int, int, error) {
	if os.Geteuid() != 0 {
		return nil, os.Geteuid(), os.Getegid(), nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("running as root needs the postgres OS user (run test/install.sh): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, uid, gid, nil
}
