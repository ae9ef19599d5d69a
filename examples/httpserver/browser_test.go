package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// browserPath returns the Chromium binary, skipping the test when there is
// none, except in CI (env CI set), where a missing browser is a failure.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is not installed; .ci/run installs the Debian packages chromium and chromium-driver")
	}
	t.Skip("Chromium is not installed (apt-get install chromium chromium-driver); skipping the browser test")
	return ""
}

// newBrowser starts headless Chromium with a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := browserPath(t)
	profile, err := os.MkdirTemp("", "jobs-chromium-")
	require.NoError(t, err)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1100, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		// Chromium's helpers may still write for a moment after it exits.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	require.NoError(t, chromedp.Do(ctx), "start the browser")
	return ctx
}

// TestDashboardInBrowser drives the dashboard in headless Chromium: start a
// transcription from the form and see its bar reach 100% with every line of
// its transcript, start another and see its transcript grow line by line
// while its bar moves, cancel it, see an input error, and keep a
// screenshot.
func TestDashboardInBrowser(t *testing.T) {
	t.Parallel()
	bctx := newBrowser(t)
	e := newEnv(t, envOptions{delay: 25 * time.Millisecond})
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	poll := func(expr string) error {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second)))
		return err
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.ID("start-form")),
		chromedp.SetValue(chromedp.ID("audio-url"), "tone:3s"),
		chromedp.Click(chromedp.ID("start")),
	))
	require.NoError(t, poll(`(() => {
		const li = document.querySelector("#jobs li.job");
		return !!li && li.dataset.status === "succeeded" &&
			li.querySelector(".pct").textContent === "100%" &&
			li.querySelector(".fill").style.width === "100%" &&
			li.querySelector(".result").textContent.includes("speech") &&
			li.querySelectorAll(".transcript .line").length === 6;
	})()`), "the first job's bar reaches 100% and its transcript has its 6 lines")
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#jobs li.job .transcript .line")].map(l => l.textContent)`))
	require.NoError(t, err)
	require.Regexp(t, `^0\.0–0\.5 s  speech  2\d\d Hz$`, lines[0])
	require.Equal(t, "1.5–2.0 s  silence", lines[3])
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#jobs li.job").dataset.id`))
	require.NoError(t, err)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("audio-url"), "tone:2m"),
		chromedp.Click(chromedp.ID("start")),
	))
	running := fmt.Sprintf(`(() => {
		const li = document.querySelector("#jobs li.job");
		return !!li && li.dataset.id !== %q && li.dataset.status === "running" &&
			parseInt(li.querySelector(".pct").textContent) >= 5 ? li.dataset.id : "";
	})()`, first)
	second, err := chromedp.Run(ctx, chromedp.Poll[string](running, chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the second job runs")
	// growing reports the row's transcript lines and percentage while it
	// runs, once it has more than n lines.
	growing := func(n int) string {
		return fmt.Sprintf(`(() => {
			const li = document.querySelector('li.job[data-id="%s"]');
			const lines = li.querySelectorAll(".transcript .line");
			return li.dataset.status === "running" && lines.length > %d ?
				[lines.length, parseInt(li.querySelector(".pct").textContent)] : null;
		})()`, second, n)
	}
	at, err := chromedp.Run(ctx, chromedp.Poll[[]int](growing(0), chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "a transcript line appears while the job runs")
	// 12 more lines of a 240-segment job move the bar by 5%: enough to
	// show in a whole percentage, whatever lead the bar (reported per
	// segment) has over the lines (stored per checkpoint).
	later, err := chromedp.Run(ctx, chromedp.Poll[[]int](growing(at[0]+12), chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "more lines follow while the job runs")
	require.Greater(t, later[1], at[1], "the bar moves as the transcript grows")
	require.Less(t, later[1], 100)
	seqs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
		`[...document.querySelectorAll('li.job[data-id="%s"] .transcript .line')].map(l => l.dataset.seq)`, second)))
	require.NoError(t, err)
	for i, seq := range seqs {
		require.Equal(t, fmt.Sprint(i+1), seq, "lines in order, each once")
	}
	saveScreenshot(t, ctx, "dashboard-running.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`li.job[data-id="`+second+`"] .cancel`))))
	require.NoError(t, poll(fmt.Sprintf(`(() => {
		const li = document.querySelector('li.job[data-id="%s"]');
		return li.dataset.status === "canceled" && li.querySelector(".status").textContent === "canceled" &&
			li.querySelector(".cancel").hidden;
	})()`, second)), "the second job shows canceled")

	// A bad audio URL: the server's message is shown next to the form.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("audio-url"), "http://example.com/a.wav"),
		chromedp.Click(chromedp.ID("start")),
	))
	require.NoError(t, poll(`(() => { const e = document.querySelector("#form-error");
		return !e.hidden && e.textContent.startsWith("audio_url: must be"); })()`))

	saveScreenshot(t, ctx, "dashboard.png")

	// The API agrees with what the page showed.
	for id, want := range map[string]jobs.Status{first: jobs.StatusSucceeded, second: jobs.StatusCanceled} {
		res, body := e.do("GET", "/api/jobs/"+id, "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, want, decodeJob(t, body).Status)
	}
}

// TestDashboardPauseInBrowser pauses the default queue from the dashboard
// before it has any job, starts a transcription that then waits (pending,
// counted under the paused queue), and resumes the queue with its button:
// the job runs to the end and the queue shows as running again.
func TestDashboardPauseInBrowser(t *testing.T) {
	t.Parallel()
	bctx := newBrowser(t)
	e := newEnv(t, envOptions{delay: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	poll := func(expr string) error {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second)))
		return err
	}
	const queueRow = `document.querySelector('#queues li.queue[data-name="default"]')`

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.ID("pause-form")),
		chromedp.SetValue(chromedp.ID("pause-name"), strings.Repeat("q", 200)),
		chromedp.Click(chromedp.ID("pause-add")),
	))
	require.NoError(t, poll(`(() => { const e = document.querySelector("#queue-error");
		return !e.hidden && e.textContent.startsWith("queue is 200 bytes"); })()`), "a malformed name: the server's message is shown")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("pause-name"), "default"),
		chromedp.Click(chromedp.ID("pause-add")),
	))
	require.NoError(t, poll(`document.querySelector("#queue-error").hidden && document.querySelector("#pause-name").value === ""`))
	require.NoError(t, poll(`(() => { const q = `+queueRow+`;
		return !!q && q.dataset.paused === "true" && getComputedStyle(q.querySelector(".badge")).display !== "none" &&
			q.querySelector(".toggle").textContent === "Resume" && q.querySelector(".qcounts").textContent === "no jobs"; })()`),
		"the queue, without jobs yet, shows paused with a Resume button")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("audio-url"), "tone:1s"),
		chromedp.Click(chromedp.ID("start")),
	))
	require.NoError(t, poll(`(() => { const li = document.querySelector("#jobs li.job"), q = `+queueRow+`;
		return !!li && li.dataset.status === "pending" && q.dataset.paused === "true" &&
			q.querySelector(".qcounts").textContent === "1 pending"; })()`), "the job waits in the paused queue")
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#jobs li.job").dataset.id`))
	require.NoError(t, err)
	res, body := e.do("GET", "/api/jobs/"+id, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	j := decodeJob(t, body)
	require.Equal(t, jobs.StatusPending, j.Status)
	require.Zero(t, j.Attempt, "never claimed")
	saveScreenshot(t, ctx, "dashboard-paused.png")

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#queues li.queue[data-name="default"] .toggle`))))
	require.NoError(t, poll(`(() => { const li = document.querySelector("#jobs li.job"), q = `+queueRow+`;
		return li.dataset.status === "succeeded" && li.querySelector(".pct").textContent === "100%" &&
			q.dataset.paused === "false" && q.querySelector(".toggle").textContent === "Pause" &&
			getComputedStyle(q.querySelector(".badge")).display === "none"; })()`), "resumed: the job runs to the end")
	require.NoError(t, poll(queueRow+`.querySelector(".qcounts").textContent === "1 succeeded"`))
}

// TestDashboardUserInBrowser starts two transcriptions for one user from
// the form with APP_USER_CONCURRENCY=1: both rows show the user, the
// second waits while the first runs and runs once the first is canceled;
// a transcription without a user shows none.
func TestDashboardUserInBrowser(t *testing.T) {
	t.Parallel()
	bctx := newBrowser(t)
	e := newEnv(t, envOptions{delay: 25 * time.Millisecond, limit: Config{UserConcurrency: 1}.transcribeLimit()})
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	poll := func(expr string) error {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second)))
		return err
	}
	// top returns the id of the newest row once it shows status and user.
	top := func(status, user, not string) string {
		id, err := chromedp.Run(ctx, chromedp.Poll[string](fmt.Sprintf(`(() => {
			const li = document.querySelector("#jobs li.job"), u = li && li.querySelector(".user");
			return !!li && li.dataset.id !== %q && li.dataset.status === %q && (u ? u.textContent : "") === %q ? li.dataset.id : "";
		})()`, not, status, user), chromedp.WithPollingTimeout(20*time.Second)))
		require.NoError(t, err, "a %s row for user %q", status, user)
		return id
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.ID("start-form")),
		chromedp.SetValue(chromedp.ID("audio-url"), "tone:10m"),
		chromedp.SetValue(chromedp.ID("user"), "ada"),
		chromedp.Click(chromedp.ID("start")),
	))
	first := top("running", "ada", "")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("audio-url"), "tone:1s"),
		chromedp.Click(chromedp.ID("start")),
	))
	second := top("pending", "ada", first)
	e.probe("echo") // the runner has claimed since, and left it
	require.Equal(t, jobs.StatusPending, e.job(uuid.MustParse(second)).Status, "ada's second waits for her first")
	saveScreenshot(t, ctx, "dashboard-user.png")

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`li.job[data-id="`+first+`"] .cancel`))))
	require.NoError(t, poll(fmt.Sprintf(`(() => {
		const a = document.querySelector('li.job[data-id="%s"]'), b = document.querySelector('li.job[data-id="%s"]');
		return a.dataset.status === "canceled" && b.dataset.status === "succeeded";
	})()`, first, second)), "the first canceled, the second runs to the end")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("user"), " "), // blank: no user
		chromedp.Click(chromedp.ID("start")),
	))
	top("succeeded", "", second)
}

// saveScreenshot writes a PNG of the page under JOBS_SCREENSHOT_DIR, or a
// temporary directory.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	dir := os.Getenv("JOBS_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	t.Logf("screenshot: %s", path)
}

// TestDashboardLoginInBrowser: with APP_AUTH_TOKEN set, the dashboard asks
// for the token, keeps it in the HttpOnly cookie, and its WebSockets work.
func TestDashboardLoginInBrowser(t *testing.T) {
	t.Parallel()
	bctx := newBrowser(t)
	e := newEnv(t, envOptions{token: testToken, delay: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	poll := func(expr string) error {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second)))
		return err
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), "wrong-token-0123456789"),
		chromedp.Click(chromedp.CSS("#login-form button")),
	))
	require.NoError(t, poll(`!document.querySelector("#login-error").hidden && document.querySelector("#login").open`),
		"a wrong token is refused and the dialog stays")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("token"), testToken),
		chromedp.Click(chromedp.CSS("#login-form button")),
	))
	require.NoError(t, poll(`!document.querySelector("#login").open`), "signed in")
	cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	require.NoError(t, err)
	require.Empty(t, cookies, "the token cookie is HttpOnly: scripts cannot read it")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("audio-url"), "tone:2s"),
		chromedp.Click(chromedp.ID("start")),
	))
	require.NoError(t, poll(`(() => { const li = document.querySelector("#jobs li.job");
		return !!li && li.dataset.status === "succeeded" && li.querySelector(".pct").textContent === "100%"; })()`))
}
