import type { Notice } from "./messages";

/** An alert people and screen readers notice: errors interrupt, the rest is polite. */
export function Alert({ notice, onClose }: { notice: Notice; onClose?: () => void }) {
  const urgent = notice.kind === "error" || notice.kind === "warning";
  return (
    <div role={urgent ? "alert" : "status"} className={`alert alert-${notice.kind}`}>
      <strong>{notice.title}.</strong> <span>{notice.text}</span>
      {onClose && (
        <button type="button" className="link" onClick={onClose} aria-label="Dismiss">
          ×
        </button>
      )}
    </div>
  );
}
