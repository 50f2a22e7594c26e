package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

// What Dendrite and Synapse share: JSON requests to the client API, password login, and counting a
// room's events by type straight from the homeserver's own SQLite database.

// matrixDo sends a JSON request (body nil: none) with an optional access token to baseURL+path and
// returns the response body; any status but 200 is an error.
func matrixDo(ctx context.Context, baseURL, method, path, token string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return b, nil
}

// PasswordLogin logs localpart in on the homeserver at baseURL with m.login.password (a new
// device) and returns its access token.
func PasswordLogin(ctx context.Context, baseURL, localpart, password string) (string, error) {
	return passwordLogin(ctx, baseURL, localpart, password)
}

// passwordLogin logs localpart in with m.login.password and returns the access token.
func passwordLogin(ctx context.Context, baseURL, localpart, password string) (string, error) {
	b, err := matrixDo(ctx, baseURL, http.MethodPost, "/_matrix/client/v3/login", "", map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]string{"type": "m.id.user", "user": localpart},
		"password":   password,
	})
	if err != nil {
		return "", fmt.Errorf("login %s: %w", localpart, err)
	}
	var r struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.AccessToken == "" {
		return "", fmt.Errorf("login %s: no access_token in %s", localpart, b)
	}
	return r.AccessToken, nil
}

// countEventTypes runs query (which must select columns `type` and `n` for one room, with a %s
// for the quoted room ID) read-only against a homeserver's SQLite database with the sqlite3
// command-line tool, while the homeserver runs. Unknown rooms give an empty map.
func countEventTypes(dbPath, query, roomID string) (map[string]int, error) {
	if err := needFile(dbPath); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sqlite3", "-readonly", "-batch", "-json", "-cmd", ".timeout 10000", dbPath,
		fmt.Sprintf(query, strings.ReplaceAll(roomID, "'", "''")))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("sqlite3 %s: %v: %s", dbPath, err, stderr.String())
	}
	counts := map[string]int{}
	if len(bytes.TrimSpace(out)) == 0 { // no rows: sqlite3 prints nothing
		return counts, nil
	}
	var rows []struct {
		Type string `json:"type"`
		N    int    `json:"n"`
	}
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("sqlite3 output %q: %w", out, err)
	}
	for _, r := range rows {
		counts[r.Type] = r.N
	}
	return counts, nil
}
