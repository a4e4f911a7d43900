/** A registry connection, resolved (from configuration, or made by a test). */
export type RegistryConfig =
  | { type: 'sqlite'; path: string }
  | {
      type: 'postgresql';
      connectionString?: string;
      host?: string;
      port?: number;
      database?: string;
      user?: string;
      password?: string;
    };
