//! The rules of plans: which operation each status allows (the status machine of
//! `PlanDetail.Status`; a successful preview's next status is [`PlanStatus::after_preview`]).
//! What a preview tells the caller is derived by the engine (`engine::plan_summary`).
//!
//! Approval: a plan whose (product, portfolio) has an `Approval` constraint covering its operation
//! is submitted for approval by the preview itself (`PreviewSuccess` is skipped: the plan moves to
//! `ApplicationInProgress` with its owner's `Submit` record), an approver's `Approve` makes it
//! `ApplicationApproved`, and only then can its owner execute it. Without such a constraint a plan
//! is executable in `PreviewSuccess`.

use crate::store::plan::PlanStatus;

/// What a caller can do to a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanOperation {
    /// `UpdateProvisionedProductPlan`: a new preview.
    Update,
    /// `ExecuteProvisionedProductPlan`.
    Execute,
    /// `CancelProvisionedProductPlan`.
    Cancel,
    /// `ApproveProvisionedProductPlan` (Approve or Reject).
    Decide,
    /// `DeleteProvisionedProductPlan`.
    Delete,
}

/// Whether `operation` is allowed in `status` (for `Execute`: given whether the plan needs an
/// approval). Cancelled, rejected and executed plans are final: they can only be deleted.
pub fn allows(status: PlanStatus, operation: PlanOperation, needs_approval: bool) -> bool {
    use PlanOperation::*;
    use PlanStatus::*;
    match operation {
        Update => matches!(status, PreviewSuccess | PreviewFailed | ApplicationInProgress | ApplicationApproved),
        Execute if needs_approval => status == ApplicationApproved,
        Execute => status == PreviewSuccess,
        Cancel => matches!(status, PreviewInProgress | PreviewSuccess | PreviewFailed | ApplicationInProgress | ApplicationApproved),
        Decide => status == ApplicationInProgress,
        Delete => !matches!(status, PreviewInProgress | ExecuteInProgress),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PlanOperation::*;
    use PlanStatus::*;

    #[test]
    fn the_status_machine_follows_preview_approval_and_execution() {
        assert_eq!(PlanStatus::after_preview(false), PreviewSuccess);
        assert_eq!(PlanStatus::after_preview(true), ApplicationInProgress);
        // Without approval: executable once previewed.
        assert!(allows(PreviewSuccess, Execute, false));
        assert!(!allows(PreviewInProgress, Execute, false));
        assert!(!allows(PreviewFailed, Execute, false));
        // With approval: only once approved.
        assert!(!allows(PreviewSuccess, Execute, true));
        assert!(!allows(ApplicationInProgress, Execute, true));
        assert!(allows(ApplicationApproved, Execute, true));
        assert!(allows(ApplicationInProgress, Decide, true));
        assert!(!allows(ApplicationApproved, Decide, true));
        // Cancelled and rejected plans are final.
        for done in [Canceled, ApplicationRejected, ExecuteSuccess, ExecuteFailed] {
            for op in [Update, Execute, Cancel, Decide] {
                assert!(!allows(done, op, true) && !allows(done, op, false), "{done} allows {op:?}");
            }
            assert!(allows(done, Delete, false));
        }
        // A running preview or execution cannot be deleted; a preview can be cancelled.
        assert!(!allows(PreviewInProgress, Delete, false) && !allows(ExecuteInProgress, Delete, false));
        assert!(allows(PreviewInProgress, Cancel, false) && !allows(ExecuteInProgress, Cancel, false));
        assert!(!allows(PreviewInProgress, Update, false) && allows(ApplicationApproved, Update, true));
    }
}
