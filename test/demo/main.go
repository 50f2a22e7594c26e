// Command demo brings up a local homeserver (Dendrite), an IRC network (InspIRCd with Anope services)
// and sealbridge, all on 127.0.0.1, prints how to connect a Matrix client and an IRC client, and
// stops everything on Ctrl-C. `make demo` runs it; test/install.sh installs what it needs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sealbridge/sealbridge/test/stack"
)

func main() {
	binary := flag.String("bridge", "./sealbridge", "the sealbridge binary")
	dir := flag.String("dir", "./demo", "where configs, databases and logs go (wiped on start)")
	flag.Parse()
	if err := run(*binary, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(binary, dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	binary, err := filepath.Abs(binary)
	if err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if err = os.RemoveAll(dir); err != nil {
		return err
	}
	for _, sub := range []string{"irc", "bridge", "dendrite"} {
		if err = os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	fmt.Println("Starting InspIRCd and Anope services...")
	ircd, err := stack.StartIRC(ctx, filepath.Join(dir, "irc"))
	if err != nil {
		return err
	}
	defer ircd.Stop()
	configPath, regPath, err := stack.WriteBridgeConfig(stack.BridgeSetup{
		Binary: binary, Dir: filepath.Join(dir, "bridge"), ServerName: "localhost",
		DBType: "sqlite3-fk-wal", DBURI: stack.SQLiteURI(filepath.Join(dir, "bridge", "sealbridge.db")),
		IRCAddr: "127.0.0.1", IRCPort: ircd.TLSPort, IRCTLS: true, IRCCAFile: ircd.CAFile,
		NetworkID: "demo", LogLevel: "info",
	})
	if err != nil {
		return err
	}
	fmt.Println("Starting Dendrite...")
	hs, err := stack.StartDendrite(ctx, filepath.Join(dir, "dendrite"), regPath)
	if err != nil {
		return err
	}
	defer hs.Stop()
	if err = stack.SetHomeserver(configPath, hs.URL, hs.ServerName); err != nil {
		return err
	}
	fmt.Println("Starting sealbridge...")
	br, err := stack.StartBridge(ctx, binary, configPath)
	if err != nil {
		return err
	}
	defer br.Stop()
	fmt.Printf(`
sealbridge demo is running (everything on 127.0.0.1; Ctrl-C stops it all).

Matrix:  homeserver %s (server name %s), open registration.
         Log in with any Matrix client that does end-to-end encryption (Element desktop, nheko,
         gomuks...), registering a new account, e.g. @you:%s.
         Start a direct chat with %s, then send:
             login nick demo yournick
             join #demo
         and you are invited to #demo's encrypted room. "help" lists every command.
IRC:     %s (plain) or %s (TLS, CA in %s).
         Connect an IRC client, /join #demo and talk to your Matrix self.
Logs:    %s, %s, %s
`, hs.URL, hs.ServerName, hs.ServerName, br.BotMXID, ircd.Addr(), ircd.TLSAddr(), ircd.CAFile,
		br.LogPath, hs.LogPath(), filepath.Join(ircd.Dir, "inspircd.log"))
	select {
	case <-ctx.Done():
		fmt.Println("\nStopping...")
	case <-br.Done():
		return fmt.Errorf("the bridge exited; see %s", br.LogPath)
	}
	return nil
}
