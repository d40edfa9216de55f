# One service account per role, each granted only what that role needs.

resource "google_service_account" "webhooks" {
  account_id   = "${local.name}-webhooks"
  display_name = "Bpium calendar: webhook functions"
  description  = "Runs on_meeting_created, on_meeting_updated and on_meeting_deleted."
}

# The workers call Bpium, Calendar and Firestore but are never called by Bpium or Google:
# they need neither the webhooks' secret string, nor the channel token, nor the right to
# create tasks.
resource "google_service_account" "sync" {
  account_id   = "${local.name}-sync"
  display_name = "Bpium calendar: queue workers"
  description  = "Runs sync_meeting and sync_calendar, the workers Cloud Tasks calls."
}

# Google's push notifications reach on_calendar_push from anywhere, with no credentials:
# an account of its own keeps that public door away from Bpium's login and the webhooks'
# secret string. It reads the channel token, calls Calendar (to stop a stranger's channel),
# reads and writes the channels' state, and queues the calendars' syncs.
resource "google_service_account" "push" {
  account_id   = "${local.name}-push"
  display_name = "Bpium calendar: Google push notifications"
  description  = "Runs on_calendar_push."
}

# An identity of its own for the tasks' OIDC tokens, so that holding actAs on it (the
# webhooks, push and jobs) lets a caller invoke the workers and nothing else.
resource "google_service_account" "tasks" {
  account_id   = "${local.name}-tasks"
  display_name = "Bpium calendar: Cloud Tasks invoker"
  description  = "The identity in the OIDC tokens Cloud Tasks sends to sync_meeting and sync_calendar."
}

# The scenario functions call only Calendar: an account of their own keeps a leaked API key
# (or a bug in them) away from Bpium's login and the webhooks' secret string.
resource "google_service_account" "scenarios" {
  account_id   = "${local.name}-scenarios"
  display_name = "Bpium calendar: scenario functions"
  description  = "Runs list_events and create_calendar."
}

resource "google_service_account" "jobs" {
  account_id   = "${local.name}-jobs"
  display_name = "Bpium calendar: scheduled jobs"
  description  = "Runs refresh_tokens, reconcile and watch_calendars."
}

resource "google_service_account" "scheduler" {
  account_id   = "${local.name}-scheduler"
  display_name = "Bpium calendar: Cloud Scheduler invoker"
  description  = "The identity in the OIDC tokens Cloud Scheduler sends to the jobs."
}

resource "google_service_account" "build" {
  account_id   = "${local.name}-build"
  display_name = "Bpium calendar: function builds"
  description  = "Cloud Build builds the functions' images as this account."
}

locals {
  runtime_accounts = {
    webhooks  = google_service_account.webhooks.email
    scenarios = google_service_account.scenarios.email
    jobs      = google_service_account.jobs.email
    sync      = google_service_account.sync.email
    push      = google_service_account.push.email
  }

  # Who may read which secret (roles/secretmanager.secretAccessor on that secret only):
  # - bpium-credentials: sync (the workers) read employees' e-mails and write the event id
  #   back, or write Google's changes to the meetings; webhooks do the same when they sync
  #   inline (Cloud Tasks did not take the task); jobs (reconcile) read the meetings of the
  #   window; scenarios and push never call Bpium;
  # - bpium-webhook-secret: webhooks verify X-Hook-Signature on every delivery;
  # - api-key: scenarios (list_events, create_calendar) check the key of every call; no
  #   webhook takes it;
  # - google-channel-token: push checks X-Goog-Channel-Token on every notification; jobs
  #   (watch_calendars) give it to every channel they open;
  # - google-oauth-client: sync, webhooks, scenarios and push refresh in memory if the job
  #   fails, jobs on schedule;
  # - google-oauth-token: sync, webhooks and scenarios call Calendar with it, push stops
  #   strangers' channels with it, jobs renew it and open the channels.
  secret_readers = {
    "bpium-credentials"    = ["sync", "webhooks", "jobs"]
    "bpium-webhook-secret" = ["webhooks"]
    "api-key"              = ["scenarios"]
    "google-channel-token" = ["push", "jobs"]
    "google-oauth-client"  = ["sync", "webhooks", "scenarios", "jobs", "push"]
    "google-oauth-token"   = ["sync", "webhooks", "scenarios", "jobs", "push"]
  }
  secret_reader_grants = merge([
    for secret, readers in local.secret_readers : {
      for reader in readers : "${secret}/${reader}" => { secret = secret, account = local.runtime_accounts[reader] }
    }
  ]...)

  # Who may read and write documents in the state database (roles/datastore.user, on that
  # database only, firestore.tf):
  # - push: on_calendar_push reads whether it holds a notification's channel, and records
  #   the channel's resource id from its first message;
  # - sync: sync_calendar keeps each calendar's sync token and the mirror of what it wrote
  #   to Bpium;
  # - jobs: watch_calendars keeps the channels, reconcile updates the mirror;
  # webhooks and scenarios keep no state.
  firestore_users = ["push", "sync", "jobs"]
}

resource "google_secret_manager_secret_iam_member" "reader" {
  for_each  = local.secret_reader_grants
  secret_id = google_secret_manager_secret.secret[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value.account}"
}

# refresh_tokens adds a token version on each renewal and destroys the old ones, on this
# secret only (Version Manager: add, list, disable, destroy; reading stays with Accessor).
resource "google_secret_manager_secret_iam_member" "token_version_manager" {
  secret_id = google_secret_manager_secret.secret["google-oauth-token"].id
  role      = "roles/secretmanager.secretVersionManager"
  member    = "serviceAccount:${google_service_account.jobs.email}"
}

# Bpium calls the webhook and scenario functions, and Google pushes to on_calendar_push,
# without Google credentials: Cloud Run must let anyone invoke them. The functions refuse
# whatever is not signed with the webhook's secret string, does not carry the API key, or
# does not carry the channel token.
resource "google_cloud_run_service_iam_member" "public_invoker" {
  for_each = { for name, spec in local.functions : name => spec if spec.public }
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
  # checkov:skip=CKV_GCP_102: Bpium's webhooks and «Веб-запрос», and Google Calendar's push notifications, cannot send Google credentials; each public function authenticates every request itself (HMAC signature, API key or channel token).
}

# Cloud Scheduler calls the jobs with an OIDC token of this account: the only invoker.
resource "google_cloud_run_service_iam_member" "scheduler_invoker" {
  for_each = local.jobs
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# Cloud Tasks calls the workers with an OIDC token of the tasks account: the workers' only
# invoker, and the tasks account invokes nothing else.
resource "google_cloud_run_service_iam_member" "tasks_invoker" {
  for_each = local.workers
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.tasks.email}"
}

# The webhooks create sync_meeting's tasks (cloudtasks.tasks.create), on this queue only.
resource "google_cloud_tasks_queue_iam_member" "webhooks_enqueuer" {
  project  = var.project_id
  location = google_cloud_tasks_queue.sync.location
  name     = google_cloud_tasks_queue.sync.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.webhooks.email}"
}

# on_calendar_push turns each notification into a sync_calendar task of its calendar.
resource "google_cloud_tasks_queue_iam_member" "push_enqueuer" {
  project  = var.project_id
  location = google_cloud_tasks_queue.sync.location
  name     = google_cloud_tasks_queue.sync.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.push.email}"
}

# watch_calendars queues the first full sync of a calendar it starts to watch.
resource "google_cloud_tasks_queue_iam_member" "jobs_enqueuer" {
  project  = var.project_id
  location = google_cloud_tasks_queue.sync.location
  name     = google_cloud_tasks_queue.sync.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.jobs.email}"
}

# A task that carries an OIDC token of an account can be created only by a caller with
# iam.serviceAccounts.actAs on that account (Cloud Tasks' OidcToken reference): the webhooks
# get it on the tasks account only, so they can have the workers called, and nothing else.
resource "google_service_account_iam_member" "webhooks_act_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.webhooks.email}"
}

# The same for on_calendar_push's tasks, on the tasks account only.
resource "google_service_account_iam_member" "push_act_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.push.email}"
}

# The same for watch_calendars' tasks, on the tasks account only.
resource "google_service_account_iam_member" "jobs_act_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.jobs.email}"
}

# Firestore's roles are granted on the project; the condition narrows this one to the state
# database, so the accounts never reach another database of the project, (default) included.
# roles/datastore.user: read, write and transactions on documents, no administration of
# indexes or of the database (firestore_users above says who needs it and why).
resource "google_project_iam_member" "firestore_user" {
  for_each = toset(local.firestore_users)
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = "serviceAccount:${local.runtime_accounts[each.key]}"

  condition {
    title       = "${local.name} state only"
    description = "Only the Firestore database ${google_firestore_database.state.name}."
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.state.name}\""
  }
}

# The build account writes its build logs...
resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# ...pushes the built image to Artifact Registry (the gcf-artifacts repository the
# platform creates on first deploy, so the grant cannot name it in advance)...
resource "google_project_iam_member" "build_images" {
  project = var.project_id
  role    = "roles/artifactregistry.writer"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# ...and reads the source zip, from this bucket only.
resource "google_storage_bucket_iam_member" "build_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}
