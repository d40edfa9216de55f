# Bpium ↔ Google Calendar: every function of functions/main.py as a Cloud Function (gen 2),
# the secrets they read (containers only: values never pass through Terraform), the
# accounts they run as, the schedule of the jobs, and the alerts.

locals {
  name = "bpium-gcal"

  # Every entry point of functions/main.py. `public`: Bpium calls it without Google
  # credentials (the function checks the webhook signature or the API key itself);
  # `runs_as`: the service account of its instances; `timeout`: seconds per request.
  entry_points = {
    on_meeting_created = { public = true, runs_as = "webhooks", timeout = 60, description = "Bpium webhook record.created: create the event, write its id back" }
    on_meeting_updated = { public = true, runs_as = "webhooks", timeout = 60, description = "Bpium webhook record.updated: follow the change" }
    on_meeting_deleted = { public = true, runs_as = "webhooks", timeout = 60, description = "Bpium webhook record.deleted: cancel the event" }
    list_events        = { public = true, runs_as = "scenarios", timeout = 120, description = "Bpium scenario (API key): list calendar events" }
    create_calendar    = { public = true, runs_as = "scenarios", timeout = 60, description = "Bpium scenario (API key): create and share a calendar" }
    refresh_tokens     = { public = false, runs_as = "jobs", timeout = 120, description = "Cloud Scheduler (OIDC): keep the Google token fresh" }
    reconcile          = { public = false, runs_as = "jobs", timeout = 540, description = "Cloud Scheduler (OIDC): make the calendar match Bpium" }
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

  # Request threads per instance: gunicorn's threads (THREADS) and Cloud Run's concurrency agree.
  threads = 8

  environment = {
    BPIUM_URL                    = trimsuffix(var.bpium_url, "/")
    BPIUM_MEETINGS_CATALOG       = var.bpium_meetings_catalog
    BPIUM_FIELDS                 = jsonencode(var.bpium_fields)
    BPIUM_EMPLOYEES_CATALOG      = var.bpium_employees_catalog
    BPIUM_EMPLOYEE_EMAIL_FIELD   = var.bpium_employee_email_field
    BPIUM_RATE_LIMIT             = tostring(var.bpium_rate_limit)
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
  }

  source_zip = startswith(var.source_zip, "/") ? var.source_zip : "${path.module}/${var.source_zip}"

  labels = { app = "bpium-google-calendar" }
}

# Gen 2 functions are built by Cloud Build into Artifact Registry and run on Cloud Run;
# calendar-json is the Calendar API that the OAuth client calls.
resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "calendar-json.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
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
