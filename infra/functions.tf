# The source, built once, and one function per entry point.

# Holds the zips `make package` builds; each is named by its content's MD5, so a new build
# is a new object and an unchanged one is not uploaded again.
resource "google_storage_bucket" "source" {
  name                        = "${var.project_id}-${local.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
  # checkov:skip=CKV_GCP_62: access logs of a bucket that only Cloud Build reads would cost a second bucket and tell nothing.
}

resource "google_storage_bucket_object" "source" {
  name   = "functions-${filemd5(local.source_zip)}.zip"
  bucket = google_storage_bucket.source.name
  source = local.source_zip
}

resource "google_cloudfunctions2_function" "function" {
  for_each    = local.functions
  name        = replace(each.key, "_", "-")
  location    = var.region
  description = each.value.description
  labels      = local.labels

  build_config {
    runtime         = "python311"
    entry_point     = each.key
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.memory
    available_cpu                    = "1"
    timeout_seconds                  = each.value.timeout
    max_instance_request_concurrency = local.threads
    service_account_email            = local.runtime_accounts[each.value.runs_as]
    # A fixed bound where the function holds a share of the Bpium budget (main.tf).
    max_instance_count = coalesce(each.value.max_instances, var.max_instances)
    min_instance_count = min(var.min_instances, coalesce(each.value.max_instances, var.max_instances))
    # Bpium, Google Calendar's push notifications, Cloud Scheduler and Cloud Tasks call from
    # outside any VPC; IAM and the functions' own checks (signature, API key, channel token,
    # OIDC) decide who gets in.
    ingress_settings = "ALLOW_ALL"
    # checkov:skip=CKV_GCP_124: Bpium (a SaaS outside Google Cloud), Google Calendar's push notifications, Cloud Scheduler and Cloud Tasks must reach the functions; who gets in is decided by IAM for the jobs and the workers and by the signature, API key or channel token for the rest.
    all_traffic_on_latest_revision = true
    # Shared settings, and per function: its timeout (Cloud Run exposes none; the code ends
    # its own retries a few seconds before it) and its share of the Bpium budget.
    environment_variables = merge(
      local.environment,
      { FUNCTION_TIMEOUT_SECONDS = tostring(each.value.timeout) },
      each.value.bpium_rate_limit == null ? {} : { BPIUM_RATE_LIMIT = tostring(each.value.bpium_rate_limit) },
    )
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.build_logs,
    google_project_iam_member.build_images,
    google_storage_bucket_iam_member.build_source,
  ]
}
