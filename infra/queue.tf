# The webhooks' work, queued: Bpium sends each webhook once and never retries, so the
# webhooks only verify and parse, and Cloud Tasks delivers each meeting's sync to the worker
# until it succeeds, at a rate that keeps the whole deployment inside Bpium's budget.
# (Cloud Tasks holds a deleted queue's name for up to 7 days: a destroy and apply within that
# time needs another name.)

resource "google_cloud_tasks_queue" "sync" {
  name     = "${local.name}-sync"
  location = var.region

  rate_limits {
    # 2.4 tasks/s = 72 per 30 s, the worker's BPIUM_RATE_LIMIT (main.tf, bpium_budget): a
    # warm task, about one Bpium call, finds a free slot. Cloud Tasks may burst above this
    # for a moment (it picks max_burst_size itself); the worker's own limiter then waits.
    max_dispatches_per_second = 2.4
    # One request per thread of the worker's single instance: Cloud Tasks never sends more
    # than it can serve at once, so no attempt is refused for lack of an instance.
    max_concurrent_dispatches = local.threads
  }

  retry_config {
    # Cloud Tasks retries every answer other than 2xx (the worker answers 503 or 429 only
    # when a retry may help) and gives up only once both limits below are reached.
    # 7 days: Bpium or Google down over a long weekend, or a revoked Google token until
    # someone runs `make authorize`, still heals; the issue asks for at least 24 h.
    max_retry_duration = "604800s"
    # 100 attempts take about 4 days at these backoffs, so the 7 days decide; -1 (unlimited)
    # would keep a failing task until Cloud Tasks' 31-day task retention instead.
    max_attempts = 100
    # 10 s: a 429 from Bpium clears within its 30-s window; the first retries land there.
    min_backoff = "10s"
    # 1 hour: through a long outage each waiting task costs one attempt an hour, and every
    # meeting follows within an hour of the outage's end.
    max_backoff = "3600s"
    # 10 s doubled 9 times passes an hour, so the interval grows 10 s, 20 s, … 2560 s (the
    # first ten attempts within 1.5 h), then stays at max_backoff.
    max_doublings = 9
  }

  depends_on = [google_project_service.apis]
}

# The webhooks send their tasks to local.sync_worker_url, built in main.tf from the region,
# project and name; after apply, compare it with the URL the platform reports.
check "sync_worker_url" {
  assert {
    condition     = try(google_cloudfunctions2_function.function["sync_meeting"].url, local.sync_worker_url) == local.sync_worker_url
    error_message = "sync_meeting answers at ${try(google_cloudfunctions2_function.function["sync_meeting"].url, "?")}, not at ${local.sync_worker_url} (SYNC_WORKER_URL): fix local.sync_worker_url in main.tf."
  }
}
