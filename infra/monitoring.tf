# Alerts by e-mail: a Google token that only a person can fix, failed runs, and a queue of
# syncs that does not drain.

resource "google_monitoring_notification_channel" "email" {
  display_name = "Bpium calendar alerts"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "reauthorization_required" {
  display_name          = "Bpium calendar: Google access must be authorized again"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]

  conditions {
    display_name = "refresh_tokens logged reauthorization_required"
    condition_matched_log {
      filter = "resource.type=\"cloud_run_revision\" AND severity=\"CRITICAL\" AND jsonPayload.message=\"reauthorization_required\""
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "3600s"
    }
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Google no longer accepts the stored refresh token. Run `make authorize` (README, «Google account») with SECRETS_BACKEND=secret-manager and GCP_PROJECT=${var.project_id}, and make sure the OAuth app is published (an app in Testing loses its tokens after 7 days)."
  }
}

resource "google_monitoring_alert_policy" "failed_runs" {
  display_name          = "Bpium calendar: a function failed"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]

  conditions {
    display_name = "an ERROR <function>_failed log entry"
    condition_matched_log {
      filter = "resource.type=\"cloud_run_revision\" AND severity>=\"ERROR\" AND jsonPayload.message=~\"_failed$\" AND resource.labels.service_name=(${join(" OR ", [for name in keys(local.functions) : "\"${replace(name, "_", "-")}\""])})"
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "3600s"
    }
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A function answered 5xx. Its log entry names the catalog, record, hook event, sequence id and error code; a webhook that failed is healed by the next change of the record (or by reconcile). For refresh_tokens failures, see the error code: upstream_unavailable passes by itself, reauthorization_required needs `make authorize`."
  }
}

# A task the worker keeps failing stays in the queue, retried with backoff for 7 days; a
# backlog beyond the queue's pace keeps it full too. Either way the queue is never empty:
# the lowest depth of every 5-minute window above 0 for 30 minutes means one of them.
resource "google_monitoring_alert_policy" "queue_not_draining" {
  display_name          = "Bpium calendar: queued syncs are not getting done"
  combiner              = "OR"
  notification_channels = [google_monitoring_notification_channel.email.id]

  conditions {
    display_name = "the sync queue has not been empty for 30 minutes"
    condition_threshold {
      filter          = "resource.type=\"cloud_tasks_queue\" AND resource.labels.queue_id=\"${google_cloud_tasks_queue.sync.name}\" AND metric.type=\"cloudtasks.googleapis.com/queue/depth\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "1800s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MIN"
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The Cloud Tasks queue `${google_cloud_tasks_queue.sync.name}` (region ${var.region}) has held tasks for 30 minutes: Bpium changes wait to reach the calendar.

      - **A backlog** (a bulk import or mass edit): the queue sends 2.4 tasks a second to stay inside Bpium's limit, so 4,320 changes take 30 minutes. If the depth falls steadily, nothing needs doing.
      - **A task that keeps failing**: `gcloud tasks list --queue=${google_cloud_tasks_queue.sync.name} --location=${var.region}` shows each task's attempts and last response, and its URL says which worker it is for. The `sync-meeting` logs name the record, the `sync-calendar` logs the calendar, and both the error code: `upstream_unavailable` or `bpium_rate_limited` (Bpium or Google down, or the Bpium account's limit used up by something else) passes by itself; `reauthorization_required` needs `make authorize`; a 403 from Cloud Run means the tasks account lost `roles/run.invoker` on the worker (`make deploy` restores it).

      Cloud Tasks retries each task with backoff up to hourly for 7 days, then drops it; reconcile heals any meeting whose task was dropped or deleted by hand (`gcloud tasks delete`), and the next push of a calendar syncs everything since its last sync token.
    EOT
  }
}
