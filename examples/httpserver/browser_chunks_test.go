package main

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

// TestDashboardChunkedInBrowser: a recording longer than
// APP_CHUNK_SECONDS, started from the form, is one row (its merge), marked
// with its number of chunks, whose bar rises while they run and reaches
// 100% with the transcript of the whole file; the list's refresh adds no
// row for the chunks.
func TestDashboardChunkedInBrowser(t *testing.T) {
	t.Parallel()
	bctx := newBrowser(t)
	// One chunk of the user at a time, 0.2 s each: the bar shows them
	// part done for long enough to see.
	e := newEnv(t, envOptions{chunk: 1, delay: 100 * time.Millisecond, limit: jobs.Limit{PerKey: 1}})
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	poll := func(expr string) error {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second)))
		return err
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.url+"/"),
		chromedp.WaitVisible(chromedp.ID("start-form")),
		chromedp.SetValue(chromedp.ID("audio-url"), "tone:4s"),
		chromedp.SetValue(chromedp.ID("user"), "ada"),
		chromedp.Click(chromedp.ID("start")),
	))
	require.NoError(t, poll(`(() => {
		const li = document.querySelector("#jobs li.job");
		const pct = li ? parseInt(li.querySelector(".pct").textContent) : 0;
		return !!li && li.querySelector(".kind").textContent === "transcribe.merge" &&
			li.querySelector(".chunks").textContent === "4 chunks" &&
			li.dataset.status === "waiting" && pct > 0 && pct < 100 &&
			li.querySelector(".msg").textContent === "4 chunks";
	})()`), "one row, waiting for its chunks, its bar part way")
	require.NoError(t, poll(`(() => {
		const li = document.querySelector("#jobs li.job");
		return li.dataset.status === "succeeded" && li.querySelector(".pct").textContent === "100%" &&
			li.querySelector(".result").textContent.startsWith("4.0 s of audio (en): speech (1.5 s) silence (0.5 s)") &&
			li.querySelectorAll(".transcript .line").length === 8;
	})()`), "the row ends with the whole file's transcript")
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#jobs li.job .transcript .line")].map(l => l.textContent)`))
	require.NoError(t, err)
	require.Regexp(t, `^0\.0–0\.5 s  speech  2\d\d Hz$`, lines[0])
	require.Equal(t, "3.5–4.0 s  silence", lines[7], "the last chunk's segment, at its time in the file")

	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`window.refreshed = false; refresh().then(() => { window.refreshed = true; }); true`))
	require.NoError(t, err)
	require.NoError(t, poll(`window.refreshed`))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#jobs li.job").length`))
	require.NoError(t, err)
	require.Equal(t, 1, rows, "the chunks have no rows of their own")
	saveScreenshot(t, ctx, "dashboard-chunked.png")
}
