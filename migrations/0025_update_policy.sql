-- Update policy of a provisioned product (an extension): Manual (its owner or an upgrade
-- campaign updates it), FollowRecommended (the scheduler also updates it to its product's
-- Recommended version) or Pinned (nothing automatic; campaigns skip it).
ALTER TABLE provisioned_products ADD COLUMN update_policy TEXT NOT NULL DEFAULT 'Manual';
