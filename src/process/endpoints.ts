/** The endpoints the configuration gives: ZAMMAD_CTI_URL's (named "default") and ZAMMAD_ENDPOINTS_FILE's. */
import type { Config } from './config.js';
import { DEFAULT_ENDPOINT, readEndpointsFile, type Endpoint } from '../zammad/endpoints-file.js';

/** Throws EndpointsFileError (naming each bad entry) when the file is missing or bad. */
export function configuredEndpoints(config: Config): Endpoint[] {
  const single: Endpoint[] =
    config.ZAMMAD_CTI_URL === undefined ? [] : [{ name: DEFAULT_ENDPOINT, url: config.ZAMMAD_CTI_URL, domains: [] }];
  if (config.ZAMMAD_ENDPOINTS_FILE === undefined) return single;
  return [...single, ...readEndpointsFile(config.ZAMMAD_ENDPOINTS_FILE, { allowHttp: config.ZAMMAD_ALLOW_HTTP })];
}
