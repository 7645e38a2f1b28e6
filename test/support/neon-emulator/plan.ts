// Neon's plans, as far as they change what the API accepts. Real Neon refuses, on Free and Launch,
// a branch create whose endpoint sets scale-to-zero ("suspend interval changing is not allowed for
// your account": neondatabase/create-branch-action#31; scale-to-zero is fixed at 5 minutes there),
// and limits compute sizes per plan. The stack's project is on Free, like a new user's.
import type { BillingSubscriptionType } from '@neon/sdk';
import { ApiError } from './errors.js';

export const PLANS = ['free', 'launch', 'scale'] as const;

export type PlanName = (typeof PLANS)[number];

interface PlanRules {
  /** `owner.subscription_type` as Neon reports it. */
  subscriptionType: BillingSubscriptionType;
  /** Whether `suspend_timeout_seconds` may be set on an endpoint. */
  suspendTimeoutConfigurable: boolean;
  /** The largest autoscaling limit, in compute units. */
  maxCu: number;
  /** Whether branches can be protected. */
  protectedBranches: boolean;
}

const RULES: Record<PlanName, PlanRules> = {
  free: { subscriptionType: 'free_v3', suspendTimeoutConfigurable: false, maxCu: 2, protectedBranches: false },
  launch: { subscriptionType: 'launch_v3', suspendTimeoutConfigurable: false, maxCu: 16, protectedBranches: true },
  scale: { subscriptionType: 'scale_v3', suspendTimeoutConfigurable: true, maxCu: 56, protectedBranches: true },
};

export function subscriptionTypeOf(plan: PlanName): BillingSubscriptionType {
  return RULES[plan].subscriptionType;
}

/** Refuses endpoint settings the plan does not allow, with Neon's status and message. */
export function checkEndpointSettings(
  plan: PlanName,
  endpoint: { suspend_timeout_seconds?: number; autoscaling_limit_min_cu?: number; autoscaling_limit_max_cu?: number },
): void {
  const rules = RULES[plan];
  if (endpoint.suspend_timeout_seconds !== undefined && endpoint.suspend_timeout_seconds !== 0 && !rules.suspendTimeoutConfigurable) {
    throw new ApiError(400, '', 'suspend interval changing is not allowed for your account');
  }
  for (const cu of [endpoint.autoscaling_limit_min_cu, endpoint.autoscaling_limit_max_cu]) {
    if (cu !== undefined && cu > rules.maxCu) {
      throw new ApiError(
        400,
        '',
        `compute size ${cu} CU is not allowed for your account (the ${plan} plan allows up to ${rules.maxCu} CU)`,
      );
    }
  }
}

/** Protected branches exist from Launch on. */
export function checkCanProtect(plan: PlanName): void {
  if (!RULES[plan].protectedBranches) {
    throw new ApiError(400, '', 'protected branches are not allowed for your account');
  }
}
