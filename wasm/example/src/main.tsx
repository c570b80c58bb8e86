import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BridgekeeperProvider } from "@bridgekeeper/client/react";
import { clientConfig } from "./config";
import { App } from "./App";
import "./styles.css";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <BridgekeeperProvider config={clientConfig}>
      <App />
    </BridgekeeperProvider>
  </StrictMode>,
);
