// Claims of Ferry's bearer tokens (JWTs). User tokens come from the gateway's own key (HS256,
// development and small deployments) or an institution's OIDC issuer; endpoint tokens are always
// minted by the gateway and name the one endpoint they may serve.

/** Audience of user tokens minted with the gateway's own key. */
export const USER_AUDIENCE = 'ferry';
/** Issuer of user tokens minted with the gateway's own key (`ferry token`, the dev default). */
export const DEV_ISSUER = 'ferry-dev';
/** Audience and issuer of endpoint-scoped tokens minted by the gateway. */
export const ENDPOINT_AUDIENCE = 'ferry-endpoint';
export const GATEWAY_ISSUER = 'ferry-gateway';

export interface EndpointTokenClaims {
  sub: string;
  endpoint_id: string;
  scope: 'endpoint';
}
