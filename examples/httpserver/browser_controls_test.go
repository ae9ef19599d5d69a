package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// noSideScroll is true when the page does not scroll sideways at its
// viewport's width and every card fits in it.
const noSideScroll = `(() => {
	const w = window.innerWidth, d = document.documentElement;
	return d.scrollWidth <= w && document.body.scrollWidth <= w &&
		[...document.querySelectorAll(".card, li.job, li.queue")].every(e => e.getBoundingClientRect().right <= w);
})()`

// TestDashboardControlsInBrowser drives the dashboard on a 390 px wide
// screen: each job shows its input and date; a long transcript and a long
// result are collapsed; failed and canceled jobs are retried from their
// rows; finished jobs are cleared from view (also after a reload) and
// shown again; every control is disabled while the server cannot be
// reached and enabled once it answers again. The page never scrolls
// sideways.
func TestDashboardControlsInBrowser(t *testing.T) {
	t.Parallel()
	bctx := newBrowser(t)
	var offline atomic.Bool                                 // the server drops every connection: as if it were down
	e := newEnv(t, envOptions{delay: 20 * time.Millisecond, // tone:20s takes 0.8 s, tone:30m 72 s
		kinds: func(r *jobs.Runner) {
			r.Handle("fail", func(context.Context, *jobs.Job, jobs.Reporter) (json.RawMessage, error) {
				return nil, jobs.Permanent(errors.New("the input is wrong"))
			})
		},
		httpSrv: func(ts *httptest.Server) {
			h := ts.Config.Handler
			ts.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if offline.Load() {
					if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
						c.Close()
					}
					return
				}
				h.ServeHTTP(w, r)
			})
		}})
	ctx, cancel := context.WithTimeout(bctx, 4*time.Minute)
	defer cancel()
	poll := func(expr string, msg string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			saveScreenshot(t, ctx, "dashboard-failed.png")
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").outerHTML`))
			t.Logf("page: %s", html)
		}
		require.NoError(t, err, msg)
	}
	row := func(id string) string { return fmt.Sprintf(`document.querySelector('li.job[data-id="%s"]')`, id) }
	top := func() string {
		id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#jobs li.job").dataset.id`))
		require.NoError(t, err)
		return id
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.ID("start-form")),
		chromedp.SetValue(chromedp.ID("audio-url"), "tone:20s?hz=330"),
		chromedp.SetValue(chromedp.ID("language"), "pt-BR"),
		chromedp.Click(chromedp.ID("start")),
	))
	poll(`(() => { const li = document.querySelector("#jobs li.job");
		return !!li && li.dataset.status === "succeeded" && li.querySelector(".result .text").textContent !== ""; })()`,
		"the 40-segment job succeeds")
	long := top()
	res, body := e.do("GET", "/api/jobs/"+long, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	created := decodeJob(t, body).CreatedAt
	// Its input and date; its 40-line transcript and long result collapsed.
	poll(fmt.Sprintf(`(() => { const li = %s, when = li.querySelector("time.when"), tx = li.querySelector(".tx");
		return li.querySelector(".input").textContent === "tone:20s?hz=330 · pt-BR" &&
			new Date(when.dateTime).getTime() === %d && when.textContent.includes("%d") &&
			!tx.hidden && !tx.open && tx.querySelector("summary .lines").textContent === "Transcript · 40 lines" &&
			tx.querySelector("summary .last").textContent.startsWith("19.5–20.0 s") &&
			li.querySelectorAll(".transcript .line").length === 40 &&
			tx.getBoundingClientRect().height < 40; })()`, row(long), created.UnixMilli(), created.Year()),
		"input, date and a folded transcript")
	clamped, err := chromedp.Run(ctx, chromedp.Evaluate[float64](row(long)+`.querySelector(".result .text").getBoundingClientRect().height`))
	require.NoError(t, err)
	poll(row(long)+`.querySelector(".result").classList.contains("long") && getComputedStyle(`+row(long)+`.querySelector(".result .more")).display !== "none"`,
		"a long result offers Show all")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`li.job[data-id="`+long+`"] .result .more`))))
	poll(fmt.Sprintf(`%s.querySelector(".result .text").getBoundingClientRect().height > %f * 3 && %s.querySelector(".result .more").textContent === "Show less"`,
		row(long), clamped, row(long)), "Show all unfolds the result")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`li.job[data-id="`+long+`"] .tx summary`))))
	poll(row(long)+`.querySelector(".tx").open`, "the transcript opens on a click")
	poll(noSideScroll, "390 px: no sideways scrolling with a long result and transcript open")

	// A failed job (created through the API) is retried from its row.
	res, body = e.do("POST", "/api/jobs", `{"kind":"fail","payload":{"words":["a","b"]}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", body)
	failed := decodeJob(t, body).ID.String()
	poll(fmt.Sprintf(`(() => { const li = %s;
		return !!li && li.dataset.status === "failed" && !li.querySelector(".retry").hidden && li.querySelector(".cancel").hidden &&
			li.querySelector(".input").textContent === '{"words":["a","b"]}' &&
			li.querySelector(".error").textContent === "the input is wrong"; })()`, row(failed)), "a failed job offers Retry")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`li.job[data-id="`+failed+`"] .retry`))))
	failedID, err := uuid.Parse(failed)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		j, err := e.runner.Get(t.Context(), failedID)
		return err == nil && j.Status == jobs.StatusFailed && len(j.Errors) == 2
	}, 30*time.Second, 10*time.Millisecond, "the retry runs the same job again, which fails again")
	poll(fmt.Sprintf(`(() => { const li = %s;
		return li.dataset.status === "failed" && document.querySelectorAll("#jobs li.job").length === 2 &&
			li.querySelector(".error").textContent === "the input is wrong"; })()`, row(failed)),
		"the same row shows it failed again; no new row")

	// A canceled transcription is retried with the same input.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("audio-url"), "tone:30m"),
		chromedp.SetValue(chromedp.ID("language"), "en"),
		chromedp.Click(chromedp.ID("start")),
	))
	poll(`(() => { const li = document.querySelector("#jobs li.job");
		return li.querySelector(".input").textContent === "tone:30m · en" && li.dataset.status === "running"; })()`, "a long job runs")
	canceled := top()
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`li.job[data-id="`+canceled+`"] .cancel`))))
	poll(row(canceled)+`.dataset.status === "canceled" && !`+row(canceled)+`.querySelector(".retry").hidden`, "canceled, with Retry")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`li.job[data-id="`+canceled+`"] .retry`))))
	poll(fmt.Sprintf(`(() => { const li = %s;
		return li.querySelector(".input").textContent === "tone:30m · en" && li.dataset.status === "running" &&
			li.querySelector(".retry").hidden && !li.querySelector(".cancel").hidden &&
			document.querySelectorAll("#jobs li.job").length === 3; })()`, row(canceled)),
		"the retried transcription runs again in its own row")
	running := canceled
	poll(noSideScroll, "390 px: no sideways scrolling with every kind of row")
	saveScreenshot(t, ctx, "dashboard-390.png")

	// Clear finished: only the running job stays, also after a reload.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("clear-finished"))))
	onlyRunning := fmt.Sprintf(`(() => { const ids = [...document.querySelectorAll("#jobs li.job")].map(li => li.dataset.id);
		return ids.length === 1 && ids[0] === %q && !document.querySelector("#cleared-note").hidden &&
			document.querySelector("#clear-finished").hidden; })()`, running)
	poll(onlyRunning, "finished jobs cleared from view")
	require.NoError(t, chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("start-form"))))
	poll(`document.querySelector("#conn").dataset.state === "live"`, "reloaded")
	poll(onlyRunning, "still cleared after a reload")
	res, body = e.do("GET", "/api/jobs", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var page jobs.Page
	require.NoError(t, json.Unmarshal(body, &page))
	require.Len(t, page.Jobs, 3, "the server keeps every job")

	// Offline: every control is disabled; back online: enabled again.
	offline.Store(true)
	poll(`(() => { const c = document.querySelector("#controls");
		return c.disabled && document.querySelector("#conn").dataset.state === "offline" &&
			[...c.querySelectorAll("button, input")].every(b => b.matches(":disabled")); })()`,
		"offline: every button and input is disabled")
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("start"))))
	saveScreenshot(t, ctx, "dashboard-offline.png")
	offline.Store(false)
	poll(`(() => { const c = document.querySelector("#controls");
		return !c.disabled && document.querySelector("#conn").dataset.state === "live" &&
			!document.querySelector("#start").matches(":disabled") &&
			document.querySelector("#queue-error").hidden && document.querySelector("#list-error").hidden; })()`,
		"online again: enabled, and the errors about it gone")
	res, body = e.do("GET", "/api/jobs", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NoError(t, json.Unmarshal(body, &page))
	require.Len(t, page.Jobs, 3, "the click on the disabled Start did nothing")

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("show-cleared"))))
	poll(`document.querySelectorAll("#jobs li.job").length === 3 && document.querySelector("#cleared-note").hidden`,
		"Show them again brings the cleared jobs back")
	poll(noSideScroll, "390 px at the end")
}
