# Bpium ↔ Google Calendar: every function of functions/main.py as a Cloud Function (gen 2),
# the secrets they read (containers only: values never pass through Terraform), the
# accounts they run as, the schedule of the jobs, the queue of the workers' tasks, the
# Firestore database of the state the instances share, and the alerts.

locals {
  name = "bpium-gcal"

  # Every entry point of functions/main.py. `public`: called without Google credentials
  # (Bpium's webhooks and scenarios, Google's push notifications; the function checks the
  # webhook signature, the API key or the channel token itself); `runs_as`: the service
  # account of its instances; `timeout`: seconds per request (a gen 2 HTTP function allows
  # up to 3600); `max_instances`: a fixed bound, or null for var.max_instances;
  # `bpium_rate_limit`: its BPIUM_RATE_LIMIT, a share of the budget below, or null for a
  # function that never calls Bpium.
  entry_points = {
    on_meeting_created = { public = true, runs_as = "webhooks", timeout = 60, max_instances = null, bpium_rate_limit = local.bpium_budget.fallback, description = "Bpium webhook record.created: queue the sync of the meeting" }
    on_meeting_updated = { public = true, runs_as = "webhooks", timeout = 60, max_instances = null, bpium_rate_limit = local.bpium_budget.fallback, description = "Bpium webhook record.updated: queue the sync; ignore our own write-back" }
    on_meeting_deleted = { public = true, runs_as = "webhooks", timeout = 60, max_instances = null, bpium_rate_limit = local.bpium_budget.fallback, description = "Bpium webhook record.deleted: queue the cancellation of the event" }
    list_events        = { public = true, runs_as = "scenarios", timeout = 120, max_instances = null, bpium_rate_limit = null, description = "Bpium scenario (API key): list calendar events" }
    create_calendar    = { public = true, runs_as = "scenarios", timeout = 60, max_instances = null, bpium_rate_limit = null, description = "Bpium scenario (API key): create and share a calendar" }
    # Google pushes as often as calendars change; the function only checks the channel token
    # and queues the calendar's sync, so it scales freely and never calls Bpium.
    on_calendar_push = { public = true, runs_as = "push", timeout = 60, max_instances = null, bpium_rate_limit = null, description = "Google Calendar push (channel token): queue the sync of the calendar" }
    refresh_tokens   = { public = false, runs_as = "jobs", timeout = 120, max_instances = null, bpium_rate_limit = null, description = "Cloud Scheduler (OIDC): keep the Google token fresh" }
    # 1800 s: the longest attempt Cloud Scheduler waits for on an HTTP target (its job's
    # attempt_deadline is this same number); one instance, the anchor of the jobs' budget.
    reconcile = { public = false, runs_as = "jobs", timeout = 1800, max_instances = 1, bpium_rate_limit = local.bpium_budget.jobs, description = "Cloud Scheduler (OIDC): make the calendar match Bpium" }
    # 300 s: one pass over the calendars' channels (a Firestore read each, and events.watch
    # only for a channel due); one instance does it, like reconcile; never calls Bpium.
    watch_calendars = { public = false, runs_as = "jobs", timeout = 300, max_instances = 1, bpium_rate_limit = null, description = "Cloud Scheduler (OIDC): keep one live push channel on every calendar" }
    # 300 s: one task's sync with its own retries, well inside the 10 minutes Cloud Tasks
    # waits for an HTTP task by default; one instance each whatever var.max_instances says,
    # since a worker's share of the Bpium budget is per instance.
    sync_meeting  = { public = false, runs_as = "sync", timeout = 300, max_instances = 1, bpium_rate_limit = local.bpium_budget.worker, description = "Cloud Tasks (OIDC): sync one queued meeting to its event" }
    sync_calendar = { public = false, runs_as = "sync", timeout = 300, max_instances = 1, bpium_rate_limit = local.bpium_budget.calendar_worker, description = "Cloud Tasks (OIDC): write one calendar's changes in Google to the meetings" }
  }
  functions = { for name, spec in local.entry_points : name => spec if contains(var.functions, name) }

  # Which Bpium webhook calls which function.
  webhook_events = {
    on_meeting_created = "record.created"
    on_meeting_updated = "record.updated"
    on_meeting_deleted = "record.deleted"
  }

  # Scheduled functions and their cron expressions (a job exists once its function does).
  schedules = {
    refresh_tokens  = var.refresh_schedule
    reconcile       = var.reconcile_schedule
    watch_calendars = var.watch_schedule
  }
  jobs = { for name, schedule in local.schedules : name => schedule if contains(keys(local.functions), name) }

  # Functions that Cloud Tasks calls with an OIDC token of the tasks account, IAM only. Both
  # take their tasks from the one queue (queue.tf).
  task_workers = ["sync_meeting", "sync_calendar"]
  workers      = { for name, spec in local.functions : name => spec if contains(local.task_workers, name) }

  # Every function's URL, built rather than read from its function: the environment names
  # some of them (the workers' for the tasks, the push function's for the channels), and the
  # functions are one for_each resource, which cannot refer to itself. A gen 2 function
  # answers at this address (the `url` Terraform reports for it; the check in queue.tf
  # compares them after apply), and Cloud Run accepts it as the OIDC token's audience.
  function_urls = { for name in keys(local.entry_points) : name => "https://${var.region}-${var.project_id}.cloudfunctions.net/${replace(name, "_", "-")}" }

  # Bpium allows the whole account 100 requests per 30 s, 429 beyond, whichever function sends
  # them. BPIUM_RATE_LIMIT is per instance (requests per 30 s), so the budget is shared out to
  # functions whose instances are bounded:
  # - worker 60: sync_meeting (1 instance) does the webhooks' work, about one Bpium call a
  #   warm task (the write-back of the event id, or the employees' e-mails);
  # - calendar_worker 12: sync_calendar (1 instance) writes what people changed in Google
  #   (answers, status, the FROM_GOOGLE roles) to the meetings: one read and a write per
  #   changed meeting, after a push that usually names one or two; a full resync after a 410
  #   pages through the window at this pace rather than starve the webhooks' worker;
  # - jobs 20: reconcile (1 instance) pages through the window's meetings;
  # - fallback 5: a webhook function syncs inline only when Cloud Tasks did not take its task
  #   (an outage of Cloud Tasks), so the share is counted once, not per webhook instance;
  # 60 × 1 + 12 × 1 + 20 × 1 + 5 = 97: 3 spare, because our limiters count a call when it is
  # sent and Bpium when it arrives (the bench saw 77 in a window for a share of 75 at the
  # edges). The queue dispatches (60 + 12) tasks per 30 s to the two workers together
  # (queue.tf). The scenario functions, on_calendar_push, watch_calendars and refresh_tokens
  # never call Bpium.
  bpium_budget = {
    worker          = 60
    calendar_worker = 12
    jobs            = 20
    fallback        = 5
  }

  # Request threads per instance: gunicorn's threads (THREADS) and Cloud Run's concurrency agree.
  threads = 8

  environment = {
    BPIUM_URL                    = trimsuffix(var.bpium_url, "/")
    BPIUM_MEETINGS_CATALOG       = var.bpium_meetings_catalog
    BPIUM_FIELDS                 = jsonencode(var.bpium_fields)
    BPIUM_EMPLOYEES_CATALOG      = var.bpium_employees_catalog
    BPIUM_EMPLOYEE_EMAIL_FIELD   = var.bpium_employee_email_field
    GOOGLE_CALENDAR_ID           = var.google_calendar_id
    TIME_ZONE                    = var.time_zone
    DEFAULT_DURATION_MINUTES     = tostring(var.default_duration_minutes)
    DEFAULT_REMINDERS            = var.default_reminders
    REMINDER_METHOD              = var.reminder_method
    SEND_UPDATES                 = var.send_updates
    TOKEN_REFRESH_MARGIN_MINUTES = tostring(var.token_refresh_margin_minutes)
    RECONCILE_LOOKBACK_DAYS      = tostring(var.reconcile_lookback_days)
    RECONCILE_LOOKAHEAD_DAYS     = tostring(var.reconcile_lookahead_days)
    LOG_LEVEL                    = var.log_level
    WEBHOOK_MAX_AGE_MINUTES      = tostring(var.webhook_max_age_minutes)
    GCP_PROJECT                  = var.project_id
    # checkov:skip=CKV_SECRET_6: "secret-manager" names the secrets backend; it is no secret
    SECRETS_BACKEND = "secret-manager"
    THREADS         = tostring(local.threads)
    # Where the webhooks, the push function and watch_calendars queue their work and how the
    # tasks reach the workers; every function gets them (the settings require them), only
    # the accounts with the enqueuer role (iam.tf) may create tasks.
    TASKS_QUEUE           = google_cloud_tasks_queue.sync.id
    SYNC_WORKER_URL       = local.function_urls["sync_meeting"]
    CALENDAR_WORKER_URL   = local.function_urls["sync_calendar"]
    TASKS_SERVICE_ACCOUNT = google_service_account.tasks.email
    # Where the channels watch_calendars opens tell Google to push.
    CALENDAR_PUSH_URL = local.function_urls["on_calendar_push"]
    # The state shared by the instances (firestore.tf); naming the resource also makes every
    # function wait for the database to exist.
    FIRESTORE_DATABASE = google_firestore_database.state.name
    FROM_GOOGLE        = var.from_google
    BPIUM_API_USER_ID  = var.bpium_api_user_id
  }

  source_zip = startswith(var.source_zip, "/") ? var.source_zip : "${path.module}/${var.source_zip}"

  labels = { app = "bpium-google-calendar" }
}

# Gen 2 functions are built by Cloud Build into Artifact Registry and run on Cloud Run;
# calendar-json is the Calendar API that the OAuth client calls; cloudtasks holds the queue;
# firestore holds the shared state.
resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "calendar-json.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
  service = each.value
  # Other things in the project may use these APIs: never switch them off on destroy.
  disable_on_destroy = false
}
