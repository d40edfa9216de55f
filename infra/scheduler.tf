# Cloud Scheduler runs the jobs with an OIDC token of the scheduler account.

resource "google_cloud_scheduler_job" "job" {
  for_each    = local.jobs
  name        = "${local.name}-${replace(each.key, "_", "-")}"
  region      = var.region
  description = google_cloudfunctions2_function.function[each.key].description
  schedule    = each.value
  time_zone   = var.time_zone
  # As long as the function may run (Cloud Scheduler allows 15 s to 30 min for HTTP targets).
  attempt_deadline = "${local.functions[each.key].timeout}s"

  # A 502/503 (Google or Secret Manager down) is worth a couple of retries; a revoked
  # token (also 503) alerts through reauthorization_required instead of looping.
  retry_config {
    retry_count          = 2
    min_backoff_duration = "30s"
    max_backoff_duration = "300s"
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.function[each.key].service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.function[each.key].service_config[0].uri
    }
  }

  depends_on = [google_project_service.apis]
}
