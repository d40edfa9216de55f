# Bpium ↔ Google Calendar: every function of functions/main.py as a Cloud Function (gen 2),
# the secrets they read (containers only: values never pass through Terraform), the
# accounts they run as, the schedule of the jobs, the queue of the webhooks' work, and the
# alerts.

locals {
  name = "bpium-gcal"

  # Every entry point of functions/main.py. `public`: Bpium calls it without Google
  # credentials (the function checks the webhook signature or the API key itself);
  # `runs_as`: the service account of its instances; `timeout`: seconds per request (a gen 2
  # HTTP function allows up to 3600); `max_instances`: a fixed bound, or null for
  # var.max_instances; `bpium_rate_limit`: its BPIUM_RATE_LIMIT, a share of the budget below,
  # or null for a function that never calls Bpium.
  entry_points = {
    on_meeting_created = { public = true, runs_as = "webhooks", timeout = 60, max_instances = null, bpium_rate_limit = local.bpium_budget.fallback, description = "Bpium webhook record.created: queue the sync of the meeting" }
    on_meeting_updated = { public = true, runs_as = "webhooks", timeout = 60, max_instances = null, bpium_rate_limit = local.bpium_budget.fallback, description = "Bpium webhook record.updated: queue the sync; ignore our own write-back" }
    on_meeting_deleted = { public = true, runs_as = "webhooks", timeout = 60, max_instances = null, bpium_rate_limit = local.bpium_budget.fallback, description = "Bpium webhook record.deleted: queue the cancellation of the event" }
    list_events        = { public = true, runs_as = "scenarios", timeout = 120, max_instances = null, bpium_rate_limit = null, description = "Bpium scenario (API key): list calendar events" }
    create_calendar    = { public = true, runs_as = "scenarios", timeout = 60, max_instances = null, bpium_rate_limit = null, description = "Bpium scenario (API key): create and share a calendar" }
    refresh_tokens     = { public = false, runs_as = "jobs", timeout = 120, max_instances = null, bpium_rate_limit = null, description = "Cloud Scheduler (OIDC): keep the Google token fresh" }
    # 1800 s: the longest attempt Cloud Scheduler waits for on an HTTP target (its job's
    # attempt_deadline is this same number); one instance, the anchor of the jobs' budget.
    reconcile = { public = false, runs_as = "jobs", timeout = 1800, max_instances = 1, bpium_rate_limit = local.bpium_budget.jobs, description = "Cloud Scheduler (OIDC): make the calendar match Bpium" }
    # 300 s: one meeting's sync with its own retries, well inside the 10 minutes Cloud Tasks
    # waits for an HTTP task by default; one instance whatever var.max_instances says, since
    # the worker's share of the Bpium budget is per instance.
    sync_meeting = { public = false, runs_as = "sync", timeout = 300, max_instances = 1, bpium_rate_limit = local.bpium_budget.worker, description = "Cloud Tasks (OIDC): sync one queued meeting to its event" }
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
    refresh_tokens = var.refresh_schedule
    reconcile      = var.reconcile_schedule
  }
  jobs = { for name, schedule in local.schedules : name => schedule if contains(keys(local.functions), name) }

  # Functions that Cloud Tasks calls with an OIDC token of the tasks account, IAM only.
  task_workers = ["sync_meeting"]
  workers      = { for name, spec in local.functions : name => spec if contains(local.task_workers, name) }

  # The worker's URL, built rather than read from its function: every function's environment
  # names it, and the functions are one for_each resource, which cannot refer to itself. A
  # gen 2 function answers at this address (the `url` Terraform reports for it; the check in
  # queue.tf compares them after apply), and Cloud Run accepts it as the OIDC token's audience.
  sync_worker_url = "https://${var.region}-${var.project_id}.cloudfunctions.net/${replace("sync_meeting", "_", "-")}"

  # Bpium allows the whole account 100 requests per 30 s, 429 beyond, whichever function sends
  # them. BPIUM_RATE_LIMIT is per instance (requests per 30 s), so the budget is shared out to
  # functions whose instances are bounded:
  # - worker 72: sync_meeting (1 instance) does the webhooks' work; the queue dispatches
  #   2.4 tasks/s, 72 per 30 s, so a warm task (about one Bpium call) never waits for a slot;
  # - jobs 20: reconcile (1 instance) pages through the window's meetings;
  # - fallback 5: a webhook function syncs inline only when Cloud Tasks did not take its task
  #   (an outage of Cloud Tasks), so the share is counted once, not per webhook instance;
  # 72 × 1 + 20 × 1 + 5 = 97: 3 spare, because our limiters count a call when it is sent
  # and Bpium when it arrives (the bench saw 77 in a window for a share of 75 at the edges).
  # The scenario functions and refresh_tokens never call Bpium.
  bpium_budget = {
    worker   = 72
    jobs     = 20
    fallback = 5
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
    # Where the webhooks queue their work and how the tasks reach the worker; every function
    # gets them (the settings require them), only the webhooks account may create tasks.
    TASKS_QUEUE           = google_cloud_tasks_queue.sync.id
    SYNC_WORKER_URL       = local.sync_worker_url
    TASKS_SERVICE_ACCOUNT = google_service_account.tasks.email
  }

  source_zip = startswith(var.source_zip, "/") ? var.source_zip : "${path.module}/${var.source_zip}"

  labels = { app = "bpium-google-calendar" }
}

# Gen 2 functions are built by Cloud Build into Artifact Registry and run on Cloud Run;
# calendar-json is the Calendar API that the OAuth client calls; cloudtasks holds the queue.
resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "calendar-json.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
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
