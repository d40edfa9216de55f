# The state the instances share (DESIGN §9, §10): per calendar its sync token and its push
# channel, and the mirror of what was written to Bpium from Google.
#
# A named database of its own: a project's (default) database (an app's, or Firebase's) is
# never read, written or taken under Terraform, and the grants in iam.tf reach this one only.
# (A named database has no free tier: every read is billed, a few per push and per watch
# run.) Its location is fixed once created; by default the functions' region, so each read
# stays a few milliseconds away.
resource "google_firestore_database" "state" {
  name        = var.firestore_database
  location_id = var.firestore_location == "" ? var.region : var.firestore_location
  type        = "FIRESTORE_NATIVE"
  # The code updates a calendar's state in transactions, from the push function and the
  # worker at once: pessimistic (the default of a new database, and what the server client
  # libraries are built for) locks what a transaction read, so the second writer waits
  # instead of failing its commit.
  concurrency_mode = "PESSIMISTIC"
  # Seven days of versions to read back after a bad write (billed as storage; a few small
  # documents per calendar).
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  # Nobody deletes the state by accident, in the console or with gcloud...
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  # ...nor with `terraform destroy`, which only forgets the database: the sync tokens and
  # channels survive a reinstall (delete it by hand, after disabling the protection, to
  # start over).
  deletion_policy = "ABANDON"

  depends_on = [google_project_service.apis]
}
