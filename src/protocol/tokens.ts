// Claims of Ferry's bearer tokens (JWTs). User tokens come from the gateway's own key (HS256,
// development and small deployments) or an institution's OIDC issuer; endpoint tokens are always
// minted by the gateway and name the one endpoint they may serve.

/** Audience of user tokens minted with the gateway's own key. */
export const USER_AUDIENCE = 'ferry';
/** Issuer of user tokens minted with the gateway's own key (`ferry token`, the dev default). */
export const DEV_ISSUER = 'ferry-dev';
/**
 * Audience of an endpoint's SECRET token (from POST /v3/endpoints, long-lived): it is accepted only
 * by POST /v3/endpoints/{id}/token, which exchanges it for a short-lived access token.
 */
export const ENDPOINT_AUDIENCE = 'ferry-endpoint';
/** Audience of an endpoint's short-lived ACCESS tokens: the agent socket and reads for the owner. */
export const ENDPOINT_ACCESS_AUDIENCE = 'ferry-endpoint-access';
export const GATEWAY_ISSUER = 'ferry-gateway';
/**
 * Longest lifetime (exp minus iat, or minus now) of a user token the gateway accepts unless its
 * `MAX_USER_TOKEN_TTL_S` says otherwise: 30 days, the lifetime `ferry token` mints by default.
 */
export const DEFAULT_MAX_USER_TOKEN_TTL_S = 30 * 24 * 3600;

/** Claims of an endpoint secret or access token. */
export interface EndpointTokenClaims {
  sub: string;
  endpoint_id: string;
  scope: 'endpoint';
  /** The endpoint's secret generation the token belongs to; revoking the secret bumps it (absent in old secrets: 0). */
  gen: number;
}

/** The answer of POST /v3/endpoints/{id}/token. */
export interface EndpointAccessToken {
  access_token: string;
  /** Seconds the access token stays valid. */
  expires_in: number;
}
