# The workers' tasks, queued: Bpium sends each webhook once and never retries, and a push
# notification only says that a calendar changed, so the webhooks and the push function
# verify, parse and hand the work on; Cloud Tasks delivers each meeting's and each calendar's
# sync to its worker until it succeeds, at a rate that keeps the whole deployment inside
# Bpium's budget. Both workers' tasks share this one queue (each task names its worker's URL).
# (Cloud Tasks holds a deleted queue's name for up to 7 days: a destroy and apply within that
# time needs another name.)

resource "google_cloud_tasks_queue" "sync" {
  name     = "${local.name}-sync"
  location = var.region

  rate_limits {
    # 2.4 tasks/s = 72 per 30 s = the two workers' BPIUM_RATE_LIMITs together (main.tf,
    # bpium_budget: 60 for sync_meeting + 12 for sync_calendar): a warm task, about one Bpium
    # call, mostly finds a free slot. A run of tasks for one worker beyond its own share
    # waits in that worker's limiter, and with at most max_concurrent_dispatches in flight
    # the queue then slows to that pace; nothing is refused. Cloud Tasks may burst above
    # this rate for a moment (it picks max_burst_size itself); the limiters then wait.
    max_dispatches_per_second = 2.4
    # One request per thread of a worker's single instance: whichever worker the tasks are
    # for, Cloud Tasks never sends more than it can serve at once, so no attempt is refused
    # for lack of an instance.
    max_concurrent_dispatches = local.threads
  }

  retry_config {
    # Cloud Tasks retries every answer other than 2xx (the workers answer 503 or 429 only
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

# The tasks go to the workers, and the channels to the push function, at the URLs built in
# main.tf (local.function_urls) from the region, project and name; after apply, compare
# them with the URLs the platform reports.
check "function_urls" {
  assert {
    condition = alltrue([
      for name, function in google_cloudfunctions2_function.function : function.url == local.function_urls[name]
    ])
    error_message = "Not where main.tf builds their URLs (SYNC_WORKER_URL, CALENDAR_WORKER_URL, CALENDAR_PUSH_URL): ${join("; ", [for name, function in google_cloudfunctions2_function.function : "${name} answers at ${function.url}, not at ${local.function_urls[name]}" if function.url != local.function_urls[name]])}. Fix local.function_urls in main.tf."
  }
}
